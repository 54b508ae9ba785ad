//! The binary encoding of the dialogue store's log entries and snapshots: LEB128 integers,
//! length-prefixed UTF-8 strings, and an event's data as JSON text. Compact (a stored event
//! is about a third of its JSON state), cheap to write, and checked on read: every decode
//! error names what it was reading.

use lumina_sdk::voice::{DialogueStatus, Direction, EventType, Source};

use super::fold::{DialogueState, StoredEvent};

/// Appends encoded values to a buffer.
pub(super) struct Enc<'a>(pub(super) &'a mut Vec<u8>);

impl Enc<'_> {
    pub(super) fn u(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    pub(super) fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(super) fn s(&mut self, v: &str) {
        self.u(v.len() as u64);
        self.0.extend_from_slice(v.as_bytes());
    }

    /// An optional string: 0 for none, else the length plus one.
    pub(super) fn os(&mut self, v: Option<&str>) {
        match v {
            None => self.u(0),
            Some(v) => {
                self.u(v.len() as u64 + 1);
                self.0.extend_from_slice(v.as_bytes());
            }
        }
    }

    pub(super) fn event(&mut self, id: &str, e: &StoredEvent) {
        self.s(id);
        self.s(e.t.as_str());
        self.i(e.ts);
        // A map of JSON values always serialises.
        let data = serde_json::to_string(&e.data).unwrap_or_else(|_| "{}".to_owned());
        self.s(&data);
        self.os(e.src.map(Source::as_str));
        self.s(&e.org);
        self.s(&e.acc);
        self.s(&e.call);
        self.s(&e.leg);
        self.os(e.caller.as_deref());
        self.os(e.called.as_deref());
        self.os(e.dir.map(Direction::as_str));
        self.u(e.region.map_or(0, |r| u64::from(r) + 1));
        self.os(e.territory.as_deref());
    }

    pub(super) fn state(&mut self, s: &DialogueState) {
        self.s(&s.id);
        self.i(s.created);
        self.i(s.updated);
        self.i(s.last_seen);
        self.u(s.revision);
        self.os(s.timed_out.map(DialogueStatus::as_str));
        self.u(s.events.len() as u64);
        for (id, e) in &s.events {
            self.event(id, e);
        }
    }
}

/// Reads encoded values from a slice.
pub(super) struct Dec<'a> {
    pub(super) b: &'a [u8],
}

impl<'a> Dec<'a> {
    pub(super) fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub(super) fn u(&mut self, what: &str) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some((&byte, rest)) = self.b.split_first() else {
                return Err(format!("{what}: ends inside a number"));
            };
            self.b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{what}: a number longer than 64 bits"))
    }

    pub(super) fn i(&mut self, what: &str) -> Result<i64, String> {
        let z = self.u(what)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn bytes(&mut self, len: u64, what: &str) -> Result<&'a [u8], String> {
        let len = usize::try_from(len).map_err(|_| format!("{what}: too long"))?;
        if len > self.b.len() {
            return Err(format!("{what}: ends inside a string"));
        }
        let (head, rest) = self.b.split_at(len);
        self.b = rest;
        Ok(head)
    }

    pub(super) fn s(&mut self, what: &str) -> Result<&'a str, String> {
        let len = self.u(what)?;
        let b = self.bytes(len, what)?;
        std::str::from_utf8(b).map_err(|_| format!("{what}: not UTF-8"))
    }

    pub(super) fn os(&mut self, what: &str) -> Result<Option<&'a str>, String> {
        match self.u(what)? {
            0 => Ok(None),
            n => {
                let b = self.bytes(n - 1, what)?;
                std::str::from_utf8(b)
                    .map(Some)
                    .map_err(|_| format!("{what}: not UTF-8"))
            }
        }
    }

    fn named<T>(
        &mut self,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, String> {
        match self.os(what)? {
            None => Ok(None),
            Some(s) => parse(s)
                .map(Some)
                .ok_or_else(|| format!("{what}: unknown value `{s}`")),
        }
    }

    pub(super) fn event(&mut self) -> Result<(String, StoredEvent), String> {
        let id = self.s("event id")?.to_owned();
        let t = self.s("event type")?;
        let t = EventType::parse(t).ok_or_else(|| format!("event type: unknown `{t}`"))?;
        let ts = self.i("event time")?;
        let data =
            serde_json::from_str(self.s("event data")?).map_err(|e| format!("event data: {e}"))?;
        let e = StoredEvent {
            t,
            ts,
            data,
            src: self.named("source", Source::parse)?,
            org: self.s("organization")?.to_owned(),
            acc: self.s("account")?.to_owned(),
            call: self.s("call")?.to_owned(),
            leg: self.s("leg")?.to_owned(),
            caller: self.os("caller")?.map(str::to_owned),
            called: self.os("called")?.map(str::to_owned),
            dir: self.named("direction", Direction::parse)?,
            region: match self.u("region")? {
                0 => None,
                r => Some(u8::try_from(r - 1).map_err(|_| "region: out of range".to_owned())?),
            },
            territory: self.os("territory")?.map(str::to_owned),
        };
        Ok((id, e))
    }

    pub(super) fn state(&mut self) -> Result<DialogueState, String> {
        let id = self.s("dialogue id")?;
        let mut s = DialogueState::new(id, self.i("created")?);
        s.updated = self.i("updated")?;
        s.last_seen = self.i("last seen")?;
        s.revision = self.u("revision")?;
        s.timed_out = self.named("idle status", DialogueStatus::parse)?;
        let n = self.u("event count")?;
        for _ in 0..n {
            let (id, e) = self.event()?;
            s.events.insert(id, e);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_equal_and_a_cut_one_names_what_it_was_reading() {
        let mut s = DialogueState::new("d-1", 5);
        s.updated = -3;
        s.last_seen = i64::MAX;
        s.revision = 300;
        s.timed_out = Some(DialogueStatus::Failed);
        s.events.insert(
            "e-1".into(),
            StoredEvent {
                t: EventType::CallEnded,
                ts: 1_700_000_000_123_456_789,
                data: serde_json::json!({"reason": "BUSY", "n": [1, 2.5, null], "ü": "✓"}),
                src: Some(Source::Rt),
                org: "org".into(),
                acc: "acc".into(),
                call: "call".into(),
                leg: "leg".into(),
                caller: Some("+44".into()),
                called: None,
                dir: Some(Direction::Outbound),
                region: Some(255),
                territory: Some("21".into()),
            },
        );
        let mut buf = Vec::new();
        Enc(&mut buf).state(&s);
        let back = Dec { b: &buf }.state().unwrap();
        assert_eq!(back, s);
        let err = Dec {
            b: &buf[..buf.len() - 3],
        }
        .state()
        .unwrap_err();
        assert!(err.starts_with("territory"), "{err}");
    }
}
