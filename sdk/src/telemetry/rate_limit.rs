//! Rate-limited logging: one message per interval, with a count of the ones held back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// Tokio's clock (the system clock outside a runtime), so paused-time tests can drive it.
use tokio::time::Instant;

/// Lets one event through per interval and counts the ones it holds back. A named limiter
/// also reports, when the interval closes, what it held back since the last message it let
/// through (so a burst that stops is not left untold until the next one).
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    state: Arc<Mutex<State>>,
    /// The component and what its messages are about, for the closing report.
    name: Option<Arc<(String, String)>>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
    /// A closing report is scheduled for the current interval.
    reporting: bool,
}

impl RateLimit {
    /// One event per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Arc::new(Mutex::new(State::default())),
            name: None,
        }
    }

    /// One event per 10 seconds.
    pub fn per_10s() -> Self {
        Self::new(Duration::from_secs(10))
    }

    /// One event per 10 seconds, and when an interval closes with events held back, a WARN
    /// line naming `component` and `what` (e.g. "invalid voice events") with their count.
    pub fn named(component: &str, what: &str) -> Self {
        Self::per_10s().with_name(component, what)
    }

    /// This limiter, reporting at the close of each interval as [`RateLimit::named`] does.
    pub fn with_name(mut self, component: &str, what: &str) -> Self {
        self.name = Some(Arc::new((component.to_owned(), what.to_owned())));
        self
    }

    /// `Some(n)` if this event may be logged, where `n` events were held back since the last
    /// one that was (and not reported since); `None` if it should be held back.
    pub fn check(&self) -> Option<u64> {
        let now = Instant::now();
        // A poisoned lock only means another thread panicked while counting; the counts are
        // still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.last {
            Some(t) if now.duration_since(t) < self.interval => {
                s.suppressed += 1;
                if !s.reporting
                    && let Some(name) = &self.name
                    && let Ok(rt) = tokio::runtime::Handle::try_current()
                {
                    s.reporting = true;
                    let (state, name, at) = (self.state.clone(), name.clone(), t + self.interval);
                    rt.spawn(async move {
                        tokio::time::sleep_until(at).await;
                        report(&state, &name);
                    });
                }
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
    }
}

/// The closing report of an interval: what was held back, if nothing has reported it since.
fn report(state: &Mutex<State>, name: &(String, String)) {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.reporting = false;
    let n = std::mem::take(&mut s.suppressed);
    if n > 0 {
        tracing::warn!(
            component = %name.0,
            suppressed = n,
            "{n} more {} in the last interval were not logged one by one.",
            name.1
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_one_through_per_interval_and_counts_the_rest() {
        let r = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(r.check(), Some(0));
        assert_eq!(r.check(), None);
        assert_eq!(r.check(), None);
        let r0 = RateLimit::new(Duration::ZERO);
        assert_eq!(r0.check(), Some(0));
        assert_eq!(r0.check(), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_named_limiter_reports_what_it_held_back_when_the_interval_closes() {
        let r = RateLimit::new(Duration::from_secs(10)).with_name("gp", "invalid voice events");
        assert_eq!(r.check(), Some(0));
        assert_eq!(r.check(), None);
        assert_eq!(r.check(), None);
        // The interval closes with no further event: the report takes the count, so the next
        // message does not count them again. Time is paused: moving it past the interval wakes
        // the report, and the test then waits until the report has run.
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..100 {
            if !r.state.lock().unwrap().reporting {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(r.state.lock().unwrap().suppressed, 0);
        assert!(!r.state.lock().unwrap().reporting);
        assert_eq!(r.check(), Some(0));
    }
}
