//! Lumina's voice semantic conventions: the attribute keys that voice call events carry on OTLP
//! log records. `docs/semantic-conventions.md` describes each.

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
    /// The event's unique id.
    pub const EVENT_ID: &str = "voice.event.id";
    /// The event type (`CALL_STARTED`, ...).
    pub const EVENT_TYPE: &str = "voice.event.type";
    /// `GP` or `RT`: the component that emitted the event.
    pub const EVENT_SOURCE: &str = "voice.event.source";
}

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
