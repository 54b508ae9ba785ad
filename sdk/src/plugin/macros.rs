//! The export macros. Each turns a type that implements a plugin trait into a WebAssembly
//! component export (for `wasm32`) or a native library entry point (otherwise).

/// Exports a [`ProcessorPlugin`](crate::plugin::ProcessorPlugin). Needs the SDK feature
/// `processor`.
#[macro_export]
macro_rules! export_processor {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::plugin::wasm::exports::lumina::plugin::processor as __p;
            use $crate::plugin::wasm::glue as __g;
            use $crate::plugin::wasm::lumina::plugin::types as __t;
            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::core::option::Option<$t>> = const { ::std::cell::RefCell::new(None) };
            }
            struct Glue;
            impl __p::Guest for Glue {
                fn describe() -> __t::Metadata {
                    __g::processor_metadata::<$t>()
                }
                fn init(config: ::std::string::String) -> ::core::result::Result<(), ::std::vec::Vec<__t::ConfigError>> {
                    __g::init(&STATE, &config, <$t as $crate::plugin::ProcessorPlugin>::init)
                }
                fn process(signal: __t::Signal, batch: ::std::vec::Vec<u8>, index: ::std::vec::Vec<u32>) -> ::core::result::Result<__p::Outcome, __t::Error> {
                    __g::with(&STATE, |p| __g::process(p, signal, &batch, &index))
                }
            }
            $crate::plugin::wasm::__lumina_export_processor_world!(Glue with_types_in $crate::plugin::wasm);
        };
        #[cfg(not(target_arch = "wasm32"))]
        $crate::__lumina_native_entry!(PROCESSOR, $t, processor_describe, processor_create, processor_process, unsupported_export, unsupported_receive);
    };
}

/// Exports an [`ExporterPlugin`](crate::plugin::ExporterPlugin). Needs the SDK feature
/// `exporter`.
#[macro_export]
macro_rules! export_exporter {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::plugin::wasm::exports::lumina::plugin::exporter as __e;
            use $crate::plugin::wasm::glue as __g;
            use $crate::plugin::wasm::lumina::plugin::types as __t;
            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::core::option::Option<$t>> = const { ::std::cell::RefCell::new(None) };
            }
            struct Glue;
            impl __e::Guest for Glue {
                fn describe() -> __t::Metadata {
                    __g::metadata(<$t as $crate::plugin::ExporterPlugin>::NAME, <$t as $crate::plugin::ExporterPlugin>::VERSION, <$t as $crate::plugin::ExporterPlugin>::SIGNALS)
                }
                fn init(config: ::std::string::String) -> ::core::result::Result<(), ::std::vec::Vec<__t::ConfigError>> {
                    __g::init(&STATE, &config, <$t as $crate::plugin::ExporterPlugin>::init)
                }
                fn export_batch(signal: __t::Signal, batch: ::std::vec::Vec<u8>) -> ::core::result::Result<(), __t::Error> {
                    __g::with(&STATE, |p| $crate::plugin::ExporterPlugin::export_encoded(p, __g::signal_in(signal), &batch))
                }
            }
            $crate::plugin::wasm::__lumina_export_exporter_world!(Glue with_types_in $crate::plugin::wasm);
        };
        #[cfg(not(target_arch = "wasm32"))]
        $crate::__lumina_native_entry!(EXPORTER, $t, exporter_describe, exporter_create, unsupported_process, exporter_export, unsupported_receive);
    };
}

/// Exports a [`ReceiverPlugin`](crate::plugin::ReceiverPlugin). Needs the SDK feature
/// `receiver`.
#[macro_export]
macro_rules! export_receiver {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::plugin::wasm::exports::lumina::plugin::receiver as __r;
            use $crate::plugin::wasm::glue as __g;
            use $crate::plugin::wasm::lumina::plugin::types as __t;
            ::std::thread_local! {
                static STATE: ::std::cell::RefCell<::core::option::Option<$t>> = const { ::std::cell::RefCell::new(None) };
            }
            struct Glue;
            impl __r::Guest for Glue {
                fn describe() -> __t::Metadata {
                    __g::metadata(<$t as $crate::plugin::ReceiverPlugin>::NAME, <$t as $crate::plugin::ReceiverPlugin>::VERSION, <$t as $crate::plugin::ReceiverPlugin>::SIGNALS)
                }
                fn init(config: ::std::string::String) -> ::core::result::Result<(), ::std::vec::Vec<__t::ConfigError>> {
                    __g::init(&STATE, &config, <$t as $crate::plugin::ReceiverPlugin>::init)
                }
                fn receive(request: __r::Request) -> ::core::result::Result<__r::Received, __t::Error> {
                    __g::with(&STATE, |p| {
                        let req = $crate::plugin::Request { path: request.path, content_type: request.content_type, body: request.body };
                        let got = $crate::plugin::ReceiverPlugin::receive(p, &req)?;
                        Ok(__r::Received {
                            batches: got.batches.iter().map(|b| (__g::signal_out(b.signal()), b.encode_protobuf())).collect(),
                            rejected: got.rejected,
                        })
                    })
                }
            }
            $crate::plugin::wasm::__lumina_export_receiver_world!(Glue with_types_in $crate::plugin::wasm);
        };
        #[cfg(not(target_arch = "wasm32"))]
        $crate::__lumina_native_entry!(RECEIVER, $t, receiver_describe, receiver_create, unsupported_process, unsupported_export, receiver_receive);
    };
}

/// The native entry points (`lumina_plugin_abi_version`, `lumina_plugin_entry`).
#[doc(hidden)]
#[macro_export]
macro_rules! __lumina_native_entry {
    ($kind:ident, $t:ty, $describe:ident, $create:ident, $process:ident, $export:ident, $receive:ident) => {
        const _: () = {
            #[cfg(panic = "abort")]
            compile_error!("native Lumina plugins must be built with panic = \"unwind\", so that a panic is caught inside the plugin instead of aborting the collector");
            use $crate::plugin::native as __n;
            static ENTRY: __n::Plugin = __n::Plugin {
                abi_version: __n::ABI_VERSION,
                size: ::core::mem::size_of::<__n::Plugin>(),
                kind: __n::kind::$kind,
                describe: __n::$describe::<$t>,
                create: __n::$create::<$t>,
                process: $crate::__lumina_pick!($process, $t),
                export: $crate::__lumina_pick!($export, $t),
                receive: $crate::__lumina_pick!($receive, $t),
                destroy: __n::destroy::<$t>,
                free_buf: __n::free_buf,
            };
            /// The native ABI version this library was built for.
            #[allow(unsafe_code)]
            #[unsafe(no_mangle)]
            pub extern "C" fn lumina_plugin_abi_version() -> u32 {
                __n::ABI_VERSION
            }
            /// This library's function table.
            #[allow(unsafe_code)]
            #[unsafe(no_mangle)]
            pub extern "C" fn lumina_plugin_entry() -> *const __n::Plugin {
                &ENTRY
            }
        };
    };
}

/// Picks a generic glue function, or an `unsupported_*` one (which is not generic).
#[doc(hidden)]
#[macro_export]
macro_rules! __lumina_pick {
    (unsupported_process, $t:ty) => {
        $crate::plugin::native::unsupported_process
    };
    (unsupported_export, $t:ty) => {
        $crate::plugin::native::unsupported_export
    };
    (unsupported_receive, $t:ty) => {
        $crate::plugin::native::unsupported_receive
    };
    ($f:ident, $t:ty) => {
        $crate::plugin::native::$f::<$t>
    };
}
