//! OTLP/JSON requests (the HTTP receivers' JSON encoding), each signal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumina_sdk::{Batch, Signal};

fuzz_target!(|data: &[u8]| {
    for signal in Signal::ALL {
        if let Ok(b) = Batch::decode_json(signal, data) {
            let _ = b.len();
            let _ = b.encode_json();
        }
    }
});
