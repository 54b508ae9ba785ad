//! GP/RT native JSON events (`POST /v1/events`): one event or an array; what is accepted
//! must survive its own JSON and log-record forms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumina_sdk::voice::VoiceEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let events = match &v {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    for e in events {
        if let Ok(ev) = VoiceEvent::from_json(&e) {
            let again = VoiceEvent::from_json(&ev.to_json()).expect("its own JSON reads back");
            assert_eq!(again.event_id, ev.event_id);
            let record = ev.to_log_record();
            VoiceEvent::from_log_record(&record, &[]).expect("its own log record reads back");
        }
    }
});
