//! Packing records into the batch requests of AWS APIs with a count and byte limit
//! (Kinesis `PutRecords`, Firehose `PutRecordBatch`, SQS `SendMessageBatch`), and fitting
//! OTLP requests under a per-record byte limit.

use lumina_sdk::Batch;
use lumina_sdk::component::Rejected;

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
