//! Lumina's voice semantic conventions (`docs/semantic-conventions.md`): the attribute keys voice
//! call events carry on OTLP log records, and typed views that convert between log records, the
//! platform's native JSON and Lumina's types:
//!
//! - [`VoiceEvent`]: one call event, from a log record or native JSON, validated; every error
//!   names the field ([`FieldError`]).
//! - [`Dialogue`] and [`Event`]: the assembled record of one call leg, as it leaves
//!   `dialogue_assembly` (a log record whose body is the Dialogue as a map).

mod dialogue;
pub mod encode;
mod event;
mod region;
pub mod value;

pub use dialogue::{Dialogue, DialogueRecordKind, Event, event_value};
pub use event::{MAX_FIELD_LEN, MIN_TIME_NANOS, VoiceEvent, derive_dialogue_id};
pub use region::Region;

use std::fmt;

use serde::{Deserialize, Serialize};

/// Attribute keys.
pub mod attr {
    /// The organization (tenant) the call belongs to.
    pub const ORGANIZATION_ID: &str = "voice.organization.id";
    /// The account within the organization.
    pub const ACCOUNT_ID: &str = "voice.account.id";
    /// The dialogue (one per call leg) the event belongs to.
    pub const DIALOGUE_ID: &str = "voice.dialogue.id";
    /// The call's GUID.
    pub const CALL_GUID: &str = "voice.call.guid";
    /// The leg's GUID.
    pub const LEG_GUID: &str = "voice.leg.guid";
    /// The calling number.
    pub const CALLER_NUMBER: &str = "voice.caller.number";
    /// The called number.
    pub const CALLED_NUMBER: &str = "voice.called.number";
    /// `INBOUND` or `OUTBOUND`.
    pub const DIRECTION: &str = "voice.direction";
    /// The home region id (1-6).
    pub const REGION_ID: &str = "voice.region.id";
    /// The territory: a numbered partition of tenants within one region (not a country code).
    pub const TERRITORY: &str = "voice.territory";
    /// The event's unique id.
    pub const EVENT_ID: &str = "voice.event.id";
    /// The event type (`CALL_STARTED`, ...).
    pub const EVENT_TYPE: &str = "voice.event.type";
    /// `GP` or `RT`: the component that emitted the event.
    pub const EVENT_SOURCE: &str = "voice.event.source";
}

/// The `event_name` of a voice event log record.
pub const EVENT_NAME: &str = "lumina.voice.event";
/// The `event_name` of a dialogue-update record.
pub const DIALOGUE_UPDATE: &str = "lumina.dialogue.update";
/// The `event_name` of an end-of-dialogue record.
pub const DIALOGUE_END: &str = "lumina.dialogue.end";

/// The event types of a call.
pub const EVENT_TYPES: [&str; 10] = [
    "CALL_STARTED",
    "CALL_ANSWERED",
    "CALL_ENDED",
    "CALL_TRANSFERRED",
    "CALL_HELD",
    "CALL_RESUMED",
    "RECORDING_STARTED",
    "RECORDING_STOPPED",
    "DTMF_RECEIVED",
    "ROUTING_DECISION",
];

/// A bad or missing field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as the sender wrote it: `eventId` in native JSON, `voice.event.id` on a log
    /// record.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value for a wire name (exact, upper case).
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// `a`, `b` or `c`, for error messages.
            pub fn expected() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                crate::voice::one_of(&names)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "host")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "enum": [$($text),+] })
            }
        }
    };
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => format!(
            "{} or `{last}`",
            init.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

string_enum! {
    /// What happened in a call.
    EventType {
        /// The call (leg) began ringing or was placed. Sets `startTime`.
        CallStarted = "CALL_STARTED",
        /// The call was answered. Sets `answerTime`.
        CallAnswered = "CALL_ANSWERED",
        /// The call ended.
        CallEnded = "CALL_ENDED",
        /// The leg was transferred elsewhere; it ends here.
        CallTransferred = "CALL_TRANSFERRED",
        /// Put on hold.
        CallHeld = "CALL_HELD",
        /// Taken off hold.
        CallResumed = "CALL_RESUMED",
        /// Recording began.
        RecordingStarted = "RECORDING_STARTED",
        /// Recording stopped.
        RecordingStopped = "RECORDING_STOPPED",
        /// A keypad digit was pressed.
        DtmfReceived = "DTMF_RECEIVED",
        /// The platform decided where the call goes.
        RoutingDecision = "ROUTING_DECISION",
    }
}

string_enum! {
    /// Which way the call goes.
    Direction {
        /// Into the organization.
        Inbound = "INBOUND",
        /// Out of the organization.
        Outbound = "OUTBOUND",
    }
}

string_enum! {
    /// The component that emitted an event.
    Source {
        /// The Global Platform.
        Gp = "GP",
        /// The RealTime component.
        Rt = "RT",
        /// A PBX: call detail records arriving over HTTP.
        Pbx = "PBX",
    }
}

string_enum! {
    /// Where a dialogue stands.
    DialogueStatus {
        /// Not ended yet.
        Active = "ACTIVE",
        /// Answered, then ended.
        Completed = "COMPLETED",
        /// Ended without being answered, or closed for lack of events.
        Failed = "FAILED",
        /// Transferred to another leg.
        Transferred = "TRANSFERRED",
    }
}

/// Region ids and the AWS regions they stand for.
pub const REGIONS: [(u8, &str, &str); 6] = [
    (1, "UK", "eu-west-1"),
    (2, "US", "us-east-1"),
    (3, "AU", "ap-southeast-2"),
    (4, "SG", "ap-southeast-1"),
    (5, "CA", "ca-central-1"),
    (6, "DE", "eu-central-1"),
];

/// Time as Lumina writes it: RFC 3339 in UTC with as many fractional digits as needed
/// (`2026-11-23T10:15:00Z`, `2026-11-23T10:15:00.25Z`).
pub fn format_time(unix_nanos: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(unix_nanos)) {
        Ok(t) => t.to_string(),
        Err(_) => String::new(),
    }
}

/// Parses an RFC 3339 time (any offset) into nanoseconds since the Unix epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let t: jiff::Timestamp = s
        .parse()
        .map_err(|e| format!("is not an RFC 3339 time (`2026-11-23T10:15:00Z`): {e}"))?;
    i64::try_from(t.as_nanosecond()).map_err(|_| "is out of range".to_owned())
}

#[cfg(test)]
mod tests;
