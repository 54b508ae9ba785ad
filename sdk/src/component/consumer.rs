//! The consumer contract: how a batch is handed to the next component and what comes back.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::Batch;

/// Anything that takes batches: a processor, a connector, an exporter's queue, a fan-out.
///
/// `consume` returns once the batch has been handed on as far as the first queue that owns it
/// (an exporter's sending queue), so a receiver that awaits it knows the data is safe to
/// acknowledge. Backpressure is expressed by waiting, then by [`ConsumeError::Backpressure`].
#[async_trait]
pub trait Consumer: Send + Sync {
    /// Takes a batch.
    async fn consume(&self, batch: Batch) -> Result<Accepted, ConsumeError>;
}

/// A shared handle to a consumer.
pub type DynConsumer = Arc<dyn Consumer>;

/// What became of a consumed batch when it was (at least partly) taken: how many items were
/// rejected as invalid, and why. The OTLP receivers turn this into a partial-success reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Items rejected as invalid (they will not be retried).
    pub rejected: u64,
    /// Why, for the sender.
    pub message: Option<String>,
}

impl Accepted {
    /// Everything was taken.
    pub fn all() -> Self {
        Self::default()
    }

    /// `rejected` items were refused because of `message`; the rest were taken.
    pub fn partial(rejected: u64, message: impl Into<String>) -> Self {
        Self {
            rejected,
            message: Some(message.into()),
        }
    }

    /// Adds up the outcomes of handing disjoint parts of a batch to consumers (a router's
    /// routes): their rejections add up, and their reasons are kept.
    pub fn plus(self, other: Accepted) -> Accepted {
        let message = match (self.message, other.message) {
            (Some(a), Some(b)) if a != b => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        Accepted {
            rejected: self.rejected + other.rejected,
            message,
        }
    }

    /// Combines the outcomes of handing the same batch to several consumers: an item rejected
    /// by any of them counts as rejected once.
    pub fn combine(self, other: Accepted) -> Accepted {
        let message = match (self.message, other.message) {
            (Some(a), Some(b)) if a != b => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        Accepted {
            rejected: self.rejected.max(other.rejected),
            message,
        }
    }
}

/// Why a batch was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConsumeError {
    /// A queue on the path stayed full; the sender should retry after `retry_after`.
    #[error("{component} is full: its queue did not drain in time; retry after {retry_after:?}")]
    Backpressure {
        /// The component whose queue was full.
        component: Arc<str>,
        /// A suggested delay before retrying.
        retry_after: Duration,
    },
    /// The collector is over its memory budget; the sender should retry after `retry_after`.
    #[error("the collector is over its memory limit; retry after {retry_after:?}")]
    MemoryLimit {
        /// A suggested delay before retrying.
        retry_after: Duration,
    },
    /// The collector is shutting down and takes no more data.
    #[error("the collector is shutting down")]
    ShuttingDown,
    /// The data is invalid; sending it again will not help.
    #[error("{component}: {message}")]
    Rejected {
        /// The component that refused it.
        component: Arc<str>,
        /// What is wrong with it.
        message: String,
    },
    /// A component failed while handling the data.
    #[error("{component}: {message}")]
    Failed {
        /// The component that failed.
        component: Arc<str>,
        /// What happened.
        message: String,
        /// Whether sending the same data again may succeed.
        retryable: bool,
    },
}

impl ConsumeError {
    /// Data that component `component` refuses as invalid.
    pub fn rejected(component: impl Into<Arc<str>>, message: impl Into<String>) -> Self {
        ConsumeError::Rejected {
            component: component.into(),
            message: message.into(),
        }
    }

    /// What a plugin's error means for the sender: a permanent error rejects the batch, a
    /// retryable one fails it retryably.
    pub fn from_plugin(component: impl Into<Arc<str>>, error: crate::plugin::PluginError) -> Self {
        match error {
            crate::plugin::PluginError::Permanent(message) => ConsumeError::Rejected {
                component: component.into(),
                message,
            },
            crate::plugin::PluginError::Retryable(message) => ConsumeError::Failed {
                component: component.into(),
                message,
                retryable: true,
            },
        }
    }

    /// Whether the sender may retry the same data.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConsumeError::Backpressure { .. }
            | ConsumeError::MemoryLimit { .. }
            | ConsumeError::ShuttingDown => true,
            ConsumeError::Rejected { .. } => false,
            ConsumeError::Failed { retryable, .. } => *retryable,
        }
    }

    /// The delay to suggest to the sender, for retryable errors.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConsumeError::Backpressure { retry_after, .. }
            | ConsumeError::MemoryLimit { retry_after } => Some(*retry_after),
            ConsumeError::ShuttingDown => Some(Duration::from_secs(1)),
            ConsumeError::Failed {
                retryable: true, ..
            } => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// A short label for metrics: `backpressure`, `memory_limit`, `shutting_down`, `invalid`,
    /// `failed`.
    pub fn reason(&self) -> &'static str {
        match self {
            ConsumeError::Backpressure { .. } => "backpressure",
            ConsumeError::MemoryLimit { .. } => "memory_limit",
            ConsumeError::ShuttingDown => "shutting_down",
            ConsumeError::Rejected { .. } => "invalid",
            ConsumeError::Failed { .. } => "failed",
        }
    }

    /// Of two errors for the same batch, the one to report: a retryable error wins over a
    /// permanent one (the sender must retry so the consumer that failed gets the data).
    pub fn worse(self, other: ConsumeError) -> ConsumeError {
        match (self.is_retryable(), other.is_retryable()) {
            (false, true) => other,
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_counts_a_rejected_item_once_and_keeps_both_reasons() {
        let a = Accepted::partial(2, "bad id");
        let b = Accepted::partial(3, "bad time");
        assert_eq!(a.combine(b), Accepted::partial(3, "bad id; bad time"));
        assert_eq!(Accepted::all().combine(Accepted::all()), Accepted::all());
    }

    #[test]
    fn refusals_and_failures_name_the_component() {
        use crate::plugin::PluginError;
        let refused =
            ConsumeError::from_plugin("wasm/redact", PluginError::Permanent("bad".into()));
        assert_eq!(refused.to_string(), "wasm/redact: bad");
        assert!(!refused.is_retryable());
        let failed =
            ConsumeError::from_plugin("wasm/redact", PluginError::Retryable("trap".into()));
        assert_eq!(failed.to_string(), "wasm/redact: trap");
        assert!(failed.is_retryable());
        assert_eq!(
            ConsumeError::rejected("dialogue_assembly", "takes logs only").to_string(),
            "dialogue_assembly: takes logs only"
        );
    }

    #[test]
    fn retryable_errors_win() {
        let rejected = ConsumeError::rejected("a", "x");
        let full = ConsumeError::Backpressure {
            component: "a".into(),
            retry_after: Duration::from_secs(1),
        };
        assert!(rejected.clone().worse(full.clone()).is_retryable());
        assert!(full.worse(rejected).is_retryable());
    }
}
