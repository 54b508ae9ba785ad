//! Packing records into the batch requests of AWS APIs with a count and byte limit
//! (Kinesis `PutRecords`, Firehose `PutRecordBatch`, SQS `SendMessageBatch`), and fitting
//! OTLP requests under a per-record byte limit.

use lumina_sdk::Batch;
use lumina_sdk::component::{ExportError, Rejected};
use lumina_sdk::config::{ConfigError, ConfigErrors, ConfigPath};

/// The limits of one batch request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries per request.
    pub max_entries: usize,
    /// Bytes of one entry.
    pub max_entry: usize,
    /// Bytes of one request.
    pub max_request: usize,
}

/// Packs `items` into requests within `limits`, in order; an item over `max_entry` is handed
/// to `too_big` with its size instead.
pub fn requests<T>(
    items: Vec<T>,
    size: impl Fn(&T) -> usize,
    limits: Limits,
    mut too_big: impl FnMut(T, usize),
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let n = size(&item);
        if n > limits.max_entry {
            too_big(item, n);
            continue;
        }
        if !current.is_empty()
            && (current.len() >= limits.max_entries || bytes + n > limits.max_request)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += n;
        current.push(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Encodes `batch` with `encode` as one entry if it fits in `limit` bytes, else halves it
/// by items until each part does; a single item that does not fit is refused.
pub fn fit(
    batch: Batch,
    limit: usize,
    encode: &impl Fn(&Batch) -> Result<Vec<u8>, String>,
    out: &mut Vec<(Vec<u8>, Batch)>,
    rejected: &mut Vec<Rejected>,
) {
    match encode(&batch) {
        Ok(data) if data.len() <= limit => out.push((data, batch)),
        Ok(data) if batch.len() <= 1 => {
            let n = data.len();
            rejected.push(Rejected::new(
                batch,
                format!("the record is {n} bytes, over the {limit}-byte limit"),
            ));
        }
        Ok(_) => {
            let half = batch.len().div_ceil(2);
            for part in batch.split(half) {
                fit(part, limit, encode, out, rejected);
            }
        }
        Err(e) => rejected.push(Rejected::new(batch, format!("cannot encode: {e}"))),
    }
}

/// What a batch API's reply said of one request: the positions of the entries worth sending
/// again, and of those refused for good, each with why.
#[derive(Debug, Default)]
pub struct Reply {
    /// Entries to try again.
    pub retry: Vec<(usize, String)>,
    /// Entries refused for good.
    pub refused: Vec<(usize, String)>,
}

/// The reply of an API that answers each of `n` entries in order, `Some(why)` for a failed
/// one (Kinesis, Firehose): those are retried. A reply that lists another number of results
/// does not say which failed, so every entry is tried again.
pub fn per_entry(n: usize, results: Vec<Option<String>>) -> Reply {
    let retry = if results.len() == n {
        results
            .into_iter()
            .enumerate()
            .filter_map(|(i, why)| Some((i, why?)))
            .collect()
    } else {
        let why = format!("the reply listed {} results for {n} entries", results.len());
        (0..n).map(|i| (i, why.clone())).collect()
    };
    Reply {
        retry,
        refused: Vec::new(),
    }
}

/// Sends packed requests of `(payload, the records it carries)` one after another with
/// `send`, and gives the host one outcome: only the entries a reply failed are handed back
/// for retry, the refused ones (and `rejected`, refused before sending) are dead-lettered
/// with their reasons. A retryable request-level error stops sending: that request and the
/// rest go back for retry. `noun` names an entry in messages (`record`, `message`).
pub async fn send_all<P, F, Fut>(
    noun: &str,
    signal: lumina_sdk::Signal,
    requests: Vec<Vec<(P, Batch)>>,
    mut rejected: Vec<Rejected>,
    send: F,
) -> Result<(), ExportError>
where
    F: Fn(Vec<P>) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, ExportError>>,
{
    let mut retry: Vec<Batch> = Vec::new();
    let mut stopped: Option<String> = None;
    let mut failure: Option<String> = None;
    for request in requests {
        let (payloads, parts): (Vec<P>, Vec<Batch>) = request.into_iter().unzip();
        if stopped.is_some() {
            retry.extend(parts);
            continue;
        }
        match send(payloads).await {
            Ok(reply) => {
                if let Some((_, why)) = reply.retry.first() {
                    failure.get_or_insert_with(|| {
                        format!("{} {noun}(s) failed, e.g. {why}", reply.retry.len())
                    });
                }
                let mut parts: Vec<Option<Batch>> = parts.into_iter().map(Some).collect();
                for (i, _) in &reply.retry {
                    retry.extend(parts.get_mut(*i).and_then(Option::take));
                }
                for (i, why) in reply.refused {
                    if let Some(b) = parts.get_mut(i).and_then(Option::take) {
                        rejected.push(Rejected::new(b, why));
                    }
                }
            }
            Err(e) if !e.retryable => rejected.extend(
                parts
                    .into_iter()
                    .map(|b| Rejected::new(b, e.message.clone())),
            ),
            Err(e) => {
                retry.extend(parts);
                stopped = Some(e.message);
            }
        }
    }
    if retry.is_empty() && rejected.is_empty() {
        return Ok(());
    }
    let message = stopped
        .or(failure)
        .unwrap_or_else(|| format!("{} {noun}(s) refused", rejected.len()));
    let retry = Batch::merge(retry)
        .ok()
        .flatten()
        .unwrap_or_else(|| Batch::empty(signal));
    Err(ExportError::per_item(message, retry, rejected))
}

/// Checks a batch API's limits: at least one entry per request (and at most `most`, where
/// the API fixes it), an entry's bytes more than 0, a request's at least an entry's. `keys`
/// are the three settings' names.
pub fn check(
    errors: &mut ConfigErrors,
    keys: [&str; 3],
    most: Option<usize>,
    (entries, entry, request): (usize, u64, u64),
) {
    let lp = ConfigPath::parse("limits");
    match most {
        Some(most) if !(1..=most).contains(&entries) => errors.push(ConfigError::new(
            lp.key(keys[0]),
            format!("must be from 1 to {most}, the most one request takes"),
        )),
        _ if entries == 0 => errors.push(ConfigError::new(lp.key(keys[0]), "must be at least 1")),
        _ => {}
    }
    if entry == 0 {
        errors.push(ConfigError::new(lp.key(keys[1]), "must be more than 0"));
    }
    if request < entry {
        errors.push(ConfigError::new(
            lp.key(keys[2]),
            format!("must be at least `{}`", keys[1]),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::fixtures::events;

    #[test]
    fn requests_keep_every_limit_and_the_order() {
        let limits = Limits {
            max_entries: 3,
            max_entry: 10,
            max_request: 12,
        };
        let mut big = Vec::new();
        let packed = requests(
            vec![4, 4, 4, 4, 11, 9, 2, 1, 1],
            |n| *n,
            limits,
            |n, size| big.push((n, size)),
        );
        assert_eq!(packed, vec![vec![4, 4, 4], vec![4], vec![9, 2, 1], vec![1]]);
        assert_eq!(big, vec![(11, 11)]);
    }

    #[test]
    fn fit_halves_until_each_part_fits_and_refuses_a_lone_item_too_large() {
        let encode = |b: &Batch| b.encode_json().map_err(|e| e.to_string());
        let one = encode(&events(1)).unwrap().len();
        let mut out = Vec::new();
        let mut rejected = Vec::new();
        fit(events(8), one * 2 + 50, &encode, &mut out, &mut rejected);
        assert!(rejected.is_empty());
        assert_eq!(out.iter().map(|(_, b)| b.len()).sum::<usize>(), 8);
        assert!(out.iter().all(|(d, _)| d.len() <= one * 2 + 50));
        assert!(out.len() >= 4, "{} parts", out.len());
        fit(events(1), one - 1, &encode, &mut out, &mut rejected);
        assert_eq!(rejected.len(), 1);
    }
}
