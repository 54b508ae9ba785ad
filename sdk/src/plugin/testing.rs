//! A test kit for plugin authors (feature `plugin-testkit`, which needs none of the host's
//! runtime): builders for voice events and batches, and a [`RecordingHost`] that captures
//! what a plugin sends its host (`log`, `counter_add`, `histogram_record`, HTTP requests) so a
//! unit test can assert on it. Use it from a plugin crate as a dev-dependency:
//!
//! ```toml
//! [dev-dependencies]
//! lumina-sdk = { path = "../lumina/sdk", default-features = false, features = ["processor", "plugin-testkit"] }
//! ```
//!
//! ```
//! use lumina_sdk::plugin::{host, testing::RecordingHost};
//!
//! let rec = RecordingHost::install();
//! host::counter_add_labelled("masked", 2, &[("signal", "logs")]);
//! host::log(host::Level::Info, "masked two numbers");
//! assert_eq!(rec.counter("masked"), 2);
//! assert_eq!(rec.counters()[0].labels, [("signal".to_owned(), "logs".to_owned())]);
//! assert_eq!(rec.logs(), [(host::Level::Info, "masked two numbers".to_owned())]);
//! ```
//!
//! The recording host serves the thread that installed it, until it is dropped; plugin calls
//! in a test run on that thread.

use std::cell::RefCell;
use std::rc::Rc;

use super::host::Level;
use super::http::{HttpError, Request, Response};
use crate::Batch;
use crate::proto::logs::v1::LogRecord;
use crate::voice::VoiceEvent;

/// One counter or histogram call.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded<T> {
    /// The name the plugin gave (`masked`, for `lumina_plugin_masked_total`).
    pub name: String,
    /// Its own labels (the host adds `component`).
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: T,
}

type Responder = Box<dyn Fn(&Request) -> Result<Response, HttpError>>;

#[derive(Default)]
struct Recorder {
    logs: RefCell<Vec<(Level, String)>>,
    counters: RefCell<Vec<Recorded<u64>>>,
    histograms: RefCell<Vec<Recorded<f64>>>,
    requests: RefCell<Vec<Request>>,
    responder: RefCell<Option<Responder>>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Recorder>>> = const { RefCell::new(None) };
}

/// Calls `f` with this thread's recording host, if one is installed.
fn with<R>(f: impl FnOnce(&Recorder) -> R) -> Option<R> {
    let r = CURRENT.with(|c| c.borrow().clone())?;
    Some(f(&r))
}

pub(crate) fn log(level: Level, message: &str) -> Option<()> {
    with(|r| r.logs.borrow_mut().push((level, message.to_owned())))
}

pub(crate) fn counter(name: &str, value: u64, labels: &[(&str, &str)]) -> Option<()> {
    with(|r| {
        r.counters.borrow_mut().push(Recorded {
            name: name.to_owned(),
            labels: super::owned_labels(labels),
            value,
        })
    })
}

pub(crate) fn histogram(name: &str, value: f64, labels: &[(&str, &str)]) -> Option<()> {
    with(|r| {
        r.histograms.borrow_mut().push(Recorded {
            name: name.to_owned(),
            labels: super::owned_labels(labels),
            value,
        })
    })
}

pub(crate) fn http(request: &Request) -> Option<Result<Response, HttpError>> {
    with(|r| {
        r.requests.borrow_mut().push(request.clone());
        match &*r.responder.borrow() {
            Some(f) => f(request),
            None => Err(HttpError::Unreachable(
                "the recording host has no responder (RecordingHost::respond_with)".into(),
            )),
        }
    })
}

/// Captures what the plugin code on this thread sends its host, until dropped.
pub struct RecordingHost {
    recorder: Rc<Recorder>,
    previous: Option<Rc<Recorder>>,
}

impl RecordingHost {
    /// Installs a recording host for this thread. HTTP requests fail as unreachable until
    /// [`RecordingHost::respond_with`] says how to answer them.
    pub fn install() -> Self {
        let recorder = Rc::new(Recorder::default());
        let previous = CURRENT.with(|c| c.borrow_mut().replace(recorder.clone()));
        Self { recorder, previous }
    }

    /// Answers every HTTP request the plugin sends with `f`.
    pub fn respond_with(
        &self,
        f: impl Fn(&Request) -> Result<Response, HttpError> + 'static,
    ) -> &Self {
        *self.recorder.responder.borrow_mut() = Some(Box::new(f));
        self
    }

    /// The lines logged, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.recorder.logs.borrow().clone()
    }

    /// Every `counter_add` call, in order.
    pub fn counters(&self) -> Vec<Recorded<u64>> {
        self.recorder.counters.borrow().clone()
    }

    /// The total added to counter `name`, whatever its labels.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters()
            .iter()
            .filter(|c| c.name == name)
            .map(|c| c.value)
            .sum()
    }

    /// Every `histogram_record` call, in order.
    pub fn histograms(&self) -> Vec<Recorded<f64>> {
        self.recorder.histograms.borrow().clone()
    }

    /// Every HTTP request sent, in order.
    pub fn http_requests(&self) -> Vec<Request> {
        self.recorder.requests.borrow().clone()
    }
}

impl Drop for RecordingHost {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// One logs batch (one resource, one scope) of `records`.
pub fn logs_of(records: Vec<LogRecord>) -> Batch {
    Batch::from_log_records(records)
}

/// A voice event of organization `org-1`, account `acc-1`, leg `leg-1`: `id` of `event_type`
/// in call `call`, `secs` seconds after a fixed start (2026-11-18), from `+441` to `+442`.
pub fn voice_event(id: &str, call: &str, event_type: &str, secs: i64) -> VoiceEvent {
    let json = serde_json::json!({
        "eventId": id,
        "eventType": event_type,
        "timestamp": crate::voice::format_time(1_795_000_000_000_000_000 + secs * 1_000_000_000),
        "organizationId": "org-1",
        "accountId": "acc-1",
        "callGuid": call,
        "legGuid": "leg-1",
        "callerNumber": "+441",
        "calledNumber": "+442",
        "direction": "INBOUND",
    });
    match VoiceEvent::from_json(&json) {
        Ok(e) => e,
        Err(e) => panic!("voice_event({id}, {event_type}): {e}"),
    }
}

/// The voice events as one logs batch, as `gp` or `rt` would hand them on.
pub fn voice_events(events: &[VoiceEvent]) -> Batch {
    logs_of(events.iter().map(VoiceEvent::to_log_record).collect())
}

/// The log records of a batch, in order (none for another signal).
pub fn log_records(batch: &Batch) -> Vec<LogRecord> {
    batch
        .as_logs()
        .map(|req| {
            req.resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| s.log_records.iter().cloned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{host, http};

    #[test]
    fn http_requests_are_recorded_and_answered_by_the_responder() {
        let rec = RecordingHost::install();
        let req = http::Request {
            method: "POST".into(),
            url: "https://hooks.example/x".into(),
            headers: vec![],
            body: b"{}".to_vec(),
        };
        assert!(matches!(
            http::send(req.clone()),
            Err(HttpError::Unreachable(_))
        ));
        rec.respond_with(|r| {
            Ok(Response {
                status: if r.url.ends_with("/x") { 202 } else { 404 },
                headers: vec![],
                body: vec![],
            })
        });
        assert_eq!(http::send(req.clone()).unwrap().status, 202);
        assert_eq!(rec.http_requests(), [req.clone(), req]);
        host::histogram_record_labelled("latency", 0.5, &[("route", "x")]);
        assert_eq!(rec.histograms()[0].value, 0.5);
        drop(rec);
        // Gone with its guard: calls are no-ops again.
        host::counter_add("after", 1);
        let again = RecordingHost::install();
        assert_eq!(again.counter("after"), 0);
    }
}
