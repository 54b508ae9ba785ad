//! Counting the records in an encoded OTLP request without decoding it: a walk over the
//! protobuf wire format that follows only the fields on the path to the records. The sink uses
//! it so that counting costs a fraction of a full decode.

use lumina_sdk::Signal;

/// The bytes are not well-formed protobuf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed;

fn varint(buf: &mut &[u8]) -> Result<u64, Malformed> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or(Malformed)?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(Malformed)
}

/// Calls `f` with the body of every length-delimited field of `msg` whose number is in
/// `fields`; skips everything else.
fn each_field<'a>(
    mut msg: &'a [u8],
    fields: &[u64],
    mut f: impl FnMut(&'a [u8]) -> Result<(), Malformed>,
) -> Result<(), Malformed> {
    while !msg.is_empty() {
        let key = varint(&mut msg)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(&mut msg)?;
            }
            1 => msg = msg.get(8..).ok_or(Malformed)?,
            5 => msg = msg.get(4..).ok_or(Malformed)?,
            2 => {
                let len = usize::try_from(varint(&mut msg)?).map_err(|_| Malformed)?;
                let body = msg.get(..len).ok_or(Malformed)?;
                msg = &msg[len..];
                if fields.contains(&field) {
                    f(body)?;
                }
            }
            _ => return Err(Malformed),
        }
    }
    Ok(())
}

fn count_path(msg: &[u8], path: &[&[u64]]) -> Result<usize, Malformed> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(1);
    };
    let mut n = 0;
    each_field(msg, first, |body| {
        n += count_path(body, rest)?;
        Ok(())
    })?;
    Ok(n)
}

/// The number of log records, spans or metric data points in an encoded
/// `Export*ServiceRequest`.
pub fn count_items(signal: Signal, msg: &[u8]) -> Result<usize, Malformed> {
    match signal {
        Signal::Logs | Signal::Traces => count_path(msg, &[&[1], &[2], &[2]]),
        // resource_metrics → scope_metrics → metrics → gauge/sum/histogram/exp. histogram/summary
        // → data_points
        Signal::Metrics => count_path(msg, &[&[1], &[2], &[2], &[5, 7, 9, 10, 11], &[1]]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumina_sdk::testkit;

    #[test]
    fn counts_match_a_full_decode() {
        for b in [
            testkit::logs(3, 7),
            testkit::traces(2, 5),
            testkit::metrics(2, 4),
            lumina_sdk::Batch::empty(Signal::Logs),
        ] {
            assert_eq!(
                count_items(b.signal(), &b.encode_protobuf()),
                Ok(b.len()),
                "{:?}",
                b.signal()
            );
        }
    }

    #[test]
    fn truncated_bytes_are_malformed() {
        let bytes = testkit::logs(1, 3).encode_protobuf();
        assert_eq!(
            count_items(Signal::Logs, &bytes[..bytes.len() - 3]),
            Err(Malformed)
        );
    }
}
