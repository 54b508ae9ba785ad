//! A library that claims native plugin ABI version 999. Lumina must refuse it before calling
//! anything else in it, naming the file and both versions.
#![expect(
    unsafe_code,
    reason = "exporting an unmangled C symbol is how a native plugin declares its ABI"
)]

/// The ABI version this (test) library claims.
#[unsafe(no_mangle)]
pub extern "C" fn lumina_plugin_abi_version() -> u32 {
    999
}
