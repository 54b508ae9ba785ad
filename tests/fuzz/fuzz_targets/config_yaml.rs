//! Config YAML (the files `lumina` reads, and `${env:...}` expansions end up here too).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(v) = lumina_sdk::config::parse_yaml(text, "fuzz.yaml")
    {
        let _ = lumina_sdk::config::from_value::<std::collections::BTreeMap<String, serde_json::Value>>(&v);
    }
});
