//! The wire walk that lets received OTLP bytes through undecoded (`lumina_sdk::wire`) against a
//! full prost decode of the same bytes, each signal: both accept or both refuse, and what is
//! accepted has the item count of its decoded form. A request the walk let through that did
//! not decode would reach the next hop inside a merged batch. The attribute index agrees with
//! the walk, and every string value it lists can be replaced: the spliced request still
//! decodes, with the same item count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumina_sdk::view::{BatchView, Edits};
use lumina_sdk::{Batch, Signal, wire};

fuzz_target!(|data: &[u8]| {
    for signal in Signal::ALL {
        let walked = wire::validate(signal, data);
        let decoded = Batch::decode_protobuf(signal, data);
        match (&walked, &decoded) {
            (Ok(n), Ok(b)) => {
                assert_eq!(*n, b.len(), "{signal}: item counts differ");
                let view = BatchView::new(signal, data).expect("the index walk refused it");
                let mut edits = Edits::new();
                for a in view.attributes().filter(|a| a.as_str().is_some()) {
                    edits.set(a.id, &"x".repeat(a.id as usize % 200));
                }
                let out = view.apply(&edits).expect("edits of string values refused");
                let again = Batch::decode_protobuf(signal, &out).expect("spliced bytes do not decode");
                assert_eq!(again.len(), *n, "{signal}: splicing changed the item count");
            }
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{signal}: the walk said {walked:?}, the decode said {:?}",
                decoded.as_ref().map(Batch::len).map_err(ToString::to_string)
            ),
        }
    }
});
