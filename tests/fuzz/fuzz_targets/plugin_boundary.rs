//! Bytes that cross the native/WebAssembly plugin boundary into the host: what a receiver
//! plugin made of a request, HTTP requests and responses framed by plugins, and a plugin's
//! JSON config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumina_sdk::plugin::{http, native};
use lumina_sdk::{Batch, Signal};

fuzz_target!(|data: &[u8]| {
    if let Some((batches, _rejected)) = native::unframe_received(data) {
        for (signal, bytes) in batches {
            let _ = Batch::decode_protobuf(signal, &bytes);
        }
    }
    let _ = native::unframe_request(data);
    let _ = http::unframe_request(data);
    let _ = http::unframe_response(data);
    let _ = native::signal_from_code(data.len() as u32);
    let _ = Signal::ALL;
});
