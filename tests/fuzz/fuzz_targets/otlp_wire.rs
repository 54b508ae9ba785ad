//! The wire walk that lets received OTLP bytes through undecoded (`lumina_sdk::wire`) against a
//! full prost decode of the same bytes, each signal: both accept or both refuse, and what is
//! accepted has the item count of its decoded form. A request the walk let through that did
//! not decode would reach the next hop inside a merged batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumina_sdk::{Batch, Signal, wire};

fuzz_target!(|data: &[u8]| {
    for signal in Signal::ALL {
        let walked = wire::validate(signal, data);
        let decoded = Batch::decode_protobuf(signal, data);
        match (&walked, &decoded) {
            (Ok(n), Ok(b)) => assert_eq!(*n, b.len(), "{signal}: item counts differ"),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{signal}: the walk said {walked:?}, the decode said {:?}",
                decoded.as_ref().map(Batch::len).map_err(ToString::to_string)
            ),
        }
    }
});
