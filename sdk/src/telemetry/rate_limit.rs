//! A rate limiter for log lines about repeated events.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets one event through per interval and counts the ones it holds back.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// One event per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State::default()),
        }
    }

    /// One event per 10 seconds.
    pub fn per_10s() -> Self {
        Self::new(Duration::from_secs(10))
    }

    /// `Some(n)` if this event may be logged, where `n` events were held back since the last
    /// one that was; `None` if it should be held back.
    pub fn check(&self) -> Option<u64> {
        let now = Instant::now();
        // A poisoned lock only means another thread panicked while counting; the counts are
        // still usable.
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.last {
            Some(t) if now.duration_since(t) < self.interval => {
                s.suppressed += 1;
                None
            }
            _ => {
                s.last = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
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
}
