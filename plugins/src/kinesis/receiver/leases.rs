//! Shard leases in DynamoDB, the protocol of the Kinesis Client Library 2.x.
//!
//! One item per shard, hash key `leaseKey` (the shard id). `leaseCounter` is the fencing
//! token: every write adds one to it and is conditional on the value the writer last saw, so
//! of two workers racing for a lease exactly one wins, and a worker whose lease was taken
//! over (a zombie) can neither renew nor checkpoint it. A checkpoint is also a renewal.
//!
//! A write that failed its condition is re-read before it counts as lost: a retried renewal
//! whose first attempt did land (the reply was lost) finds the item owned by the writer with
//! the counter one past what it expected, and counts as done.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeyType, ScalarAttributeType};

use crate::aws::dynamodb::ensure_table;
pub(crate) use crate::aws::sdk_error;

/// `checkpoint` of a lease whose shard was read to its end.
pub const SHARD_END: &str = "SHARD_END";

/// One lease item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The shard id (`leaseKey`).
    pub key: String,
    /// The worker holding it (`leaseOwner`); `None` when free.
    pub owner: Option<String>,
    /// The fencing token (`leaseCounter`).
    pub counter: u64,
    /// A sequence number, or `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, `SHARD_END`.
    pub checkpoint: String,
    /// `checkpointSubSequenceNumber` (0: records are not aggregated).
    pub sub_sequence: u64,
    /// `ownerSwitchesSinceCheckpoint`.
    pub owner_switches: u64,
    /// `parentShardId`: the shards this one was split or merged from.
    pub parents: Vec<String>,
    /// `childShardIds`: the shards it was split or merged into, once it ended.
    pub children: Vec<String>,
}

impl Lease {
    /// A new, free lease for `shard` starting at `checkpoint`.
    pub fn new(shard: &str, checkpoint: &str, mut parents: Vec<String>) -> Self {
        parents.sort();
        Self {
            key: shard.to_owned(),
            owner: None,
            counter: 0,
            checkpoint: checkpoint.to_owned(),
            sub_sequence: 0,
            owner_switches: 0,
            parents,
            children: Vec::new(),
        }
    }

    /// Whether its shard was read to the end.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == SHARD_END
    }

    fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::new();
        item.insert("leaseKey".into(), AttributeValue::S(self.key.clone()));
        if let Some(o) = &self.owner {
            item.insert("leaseOwner".into(), AttributeValue::S(o.clone()));
        }
        item.insert("leaseCounter".into(), num(self.counter));
        item.insert(
            "checkpoint".into(),
            AttributeValue::S(self.checkpoint.clone()),
        );
        item.insert("checkpointSubSequenceNumber".into(), num(self.sub_sequence));
        item.insert(
            "ownerSwitchesSinceCheckpoint".into(),
            num(self.owner_switches),
        );
        if !self.parents.is_empty() {
            item.insert(
                "parentShardId".into(),
                AttributeValue::Ss(self.parents.clone()),
            );
        }
        if !self.children.is_empty() {
            item.insert(
                "childShardIds".into(),
                AttributeValue::Ss(self.children.clone()),
            );
        }
        item
    }

    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, LeaseError> {
        let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        let n = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // String sets have no order: kept sorted, so a lease read back compares equal.
        let ss = |k: &str| {
            let mut v = item
                .get(k)
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            v.sort();
            v
        };
        let key = s("leaseKey")
            .ok_or_else(|| LeaseError::Other("a lease item has no `leaseKey`".into()))?;
        Ok(Self {
            key,
            owner: s("leaseOwner"),
            counter: n("leaseCounter"),
            checkpoint: s("checkpoint").unwrap_or_else(|| "TRIM_HORIZON".into()),
            sub_sequence: n("checkpointSubSequenceNumber"),
            owner_switches: n("ownerSwitchesSinceCheckpoint"),
            parents: ss("parentShardId"),
            children: ss("childShardIds"),
        })
    }
}

fn num(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// Why a lease operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Another worker changed the lease since it was read: it is not ours (any more).
    #[error("lease `{0}` changed hands")]
    Lost(String),
    /// DynamoDB throttled the request; try again later.
    #[error("DynamoDB throttled the lease table: {0}")]
    Throttled(String),
    /// Any other failure (network, permissions, a missing table).
    #[error("{0}")]
    Other(String),
}

/// One fenced write: what it sets, and the lease it leaves.
struct Write<'a> {
    /// Conditional on the writer owning the lease, too.
    must_own: bool,
    /// The lease as the write leaves it.
    want: Lease,
    /// The `SET` part of the update expression.
    update: &'a str,
    /// Its values.
    values: Vec<(&'a str, AttributeValue)>,
    /// Attributes to remove.
    remove: &'a [&'a str],
}

/// The lease table.
#[derive(Clone)]
pub struct LeaseTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn classify<E, R>(what: &str, e: &SdkError<E, R>) -> LeaseError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let (code, msg) = sdk_error(what, e);
    match code.as_deref() {
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded",
        ) => LeaseError::Throttled(msg),
        _ => LeaseError::Other(msg),
    }
}

fn condition_failed<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    e.code() == Some("ConditionalCheckFailedException")
}

impl LeaseTable {
    /// The lease table `table` reached through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand capacity) if it does not exist, and waits until it is
    /// `ACTIVE`.
    pub async fn ensure(&self) -> Result<(), LeaseError> {
        ensure_table(
            &self.client,
            &self.table,
            vec![("leaseKey", ScalarAttributeType::S, KeyType::Hash)],
            |b| b,
        )
        .await
        .map_err(LeaseError::Other)
    }

    /// Every lease, read consistently.
    pub async fn list(&self) -> Result<Vec<Lease>, LeaseError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let r = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("cannot list the leases", &e))?;
            for item in r.items() {
                out.push(Lease::from_item(item)?);
            }
            match r.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// One lease, read consistently.
    pub async fn get(&self, key: &str) -> Result<Option<Lease>, LeaseError> {
        let r = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("leaseKey", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("cannot read a lease", &e))?;
        r.item().map(Lease::from_item).transpose()
    }

    /// Creates `lease` unless one exists for its shard; `true` if this call created it.
    pub async fn create(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease.to_item()))
            .condition_expression("attribute_not_exists(leaseKey)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(classify("cannot create a lease", &e)),
        }
    }

    /// Runs a write conditional on `lease.counter` (and, with `must_own`, on `me` owning it)
    /// that sets the counter one higher. On a failed condition the item is re-read: if it
    /// shows exactly this write (owner, counter and `landed`), an earlier attempt landed and
    /// the write counts as done. Returns the lease as written.
    async fn fenced(&self, lease: &Lease, me: &str, w: Write<'_>) -> Result<Lease, LeaseError> {
        let Write {
            must_own,
            want,
            update,
            values,
            remove,
        } = w;
        let mut expr = update.to_owned();
        if !remove.is_empty() {
            expr.push_str(" REMOVE ");
            expr.push_str(&remove.join(", "));
        }
        let mut cond = "leaseCounter = :old".to_owned();
        if must_own {
            cond.push_str(" AND leaseOwner = :me");
        }
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("leaseKey", AttributeValue::S(lease.key.clone()))
            .update_expression(expr)
            .condition_expression(cond)
            .expression_attribute_values(":old", num(lease.counter))
            .expression_attribute_values(":new", num(lease.counter + 1));
        if must_own || update.contains(":me") {
            call = call.expression_attribute_values(":me", AttributeValue::S(me.to_owned()));
        }
        for (k, v) in values {
            call = call.expression_attribute_values(k, v);
        }
        // One retry of a write whose outcome is unknown (a timeout, a dropped connection).
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call.clone().send().await {
                Ok(_) => return Ok(want),
                Err(e) if condition_failed(&e) => {
                    return match self.get(&lease.key).await? {
                        Some(now) if now == want => Ok(want),
                        _ => Err(LeaseError::Lost(lease.key.clone())),
                    };
                }
                Err(e) => {
                    let err = classify("cannot write a lease", &e);
                    let unknown = matches!(
                        e,
                        SdkError::TimeoutError(_)
                            | SdkError::DispatchFailure(_)
                            | SdkError::ResponseError(_)
                    );
                    if attempt < 2 && unknown {
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Renews a lease `me` holds: the counter goes up by one.
    pub async fn renew(&self, lease: &Lease, me: &str) -> Result<Lease, LeaseError> {
        let want = Lease {
            counter: lease.counter + 1,
            owner: Some(me.to_owned()),
            ..lease.clone()
        };
        self.fenced(
            lease,
            me,
            Write {
                must_own: true,
                want,
                update: "SET leaseCounter = :new",
                values: vec![],
                remove: &[],
            },
        )
        .await
    }

    /// Takes a lease (free, expired, or stolen from its owner): the owner becomes `me`.
    pub async fn take(&self, lease: &Lease, me: &str) -> Result<Lease, LeaseError> {
        let switched = lease.owner.as_deref() != Some(me);
        let want = Lease {
            counter: lease.counter + 1,
            owner: Some(me.to_owned()),
            owner_switches: lease.owner_switches + u64::from(switched),
            ..lease.clone()
        };
        self.fenced(
            lease,
            me,
            Write {
                must_own: false,
                want: want.clone(),
                update: "SET leaseCounter = :new, leaseOwner = :me, ownerSwitchesSinceCheckpoint = :sw",
                values: vec![(":sw", num(want.owner_switches))],
                remove: &[],
            },
        )
        .await
    }

    /// Records that everything up to `sequence` was handed on (also a renewal).
    pub async fn checkpoint(
        &self,
        lease: &Lease,
        me: &str,
        sequence: &str,
    ) -> Result<Lease, LeaseError> {
        let want = Lease {
            counter: lease.counter + 1,
            owner: Some(me.to_owned()),
            checkpoint: sequence.to_owned(),
            sub_sequence: 0,
            owner_switches: 0,
            ..lease.clone()
        };
        self.fenced(
            lease,
            me,
            Write {
                must_own: true,
                want,
                update: "SET leaseCounter = :new, checkpoint = :cp, checkpointSubSequenceNumber = :zero, ownerSwitchesSinceCheckpoint = :zero",
                values: vec![
                (":cp", AttributeValue::S(sequence.to_owned())),
                (":zero", num(0)),
            ],
                remove: &[],
            },
        )
        .await
    }

    /// Records a finished shard's children (also a renewal).
    pub async fn set_children(
        &self,
        lease: &Lease,
        me: &str,
        children: &[String],
    ) -> Result<Lease, LeaseError> {
        let mut children = children.to_vec();
        children.sort();
        let want = Lease {
            counter: lease.counter + 1,
            owner: Some(me.to_owned()),
            children: children.clone(),
            ..lease.clone()
        };
        if children.is_empty() {
            return self.renew(lease, me).await;
        }
        self.fenced(
            lease,
            me,
            Write {
                must_own: true,
                want,
                update: "SET leaseCounter = :new, childShardIds = :children",
                values: vec![(":children", AttributeValue::Ss(children))],
                remove: &[],
            },
        )
        .await
    }

    /// Lets go of a lease `me` holds: it has no owner, and the counter goes up by one.
    pub async fn release(&self, lease: &Lease, me: &str) -> Result<Lease, LeaseError> {
        let want = Lease {
            counter: lease.counter + 1,
            owner: None,
            ..lease.clone()
        };
        self.fenced(
            lease,
            me,
            Write {
                must_own: true,
                want,
                update: "SET leaseCounter = :new",
                values: vec![],
                remove: &["leaseOwner"],
            },
        )
        .await
    }
}
