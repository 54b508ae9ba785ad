//! OTLP protobuf requests (what the gRPC and HTTP receivers decode), each signal; what
//! decodes must encode and decode to the same bytes (bytes, not values: NaN is valid data).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumina_sdk::{Batch, Signal};

fuzz_target!(|data: &[u8]| {
    for signal in Signal::ALL {
        if let Ok(b) = Batch::decode_protobuf(signal, data) {
            let bytes = b.encode_protobuf();
            let again = Batch::decode_protobuf(signal, &bytes).expect("re-decodes");
            assert_eq!(again.encode_protobuf(), bytes);
            let _ = b.len();
        }
    }
});
