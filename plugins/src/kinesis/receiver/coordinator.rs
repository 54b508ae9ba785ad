//! Which shards this worker reads: renewing its leases, taking free and expired ones, and
//! stealing from the most loaded worker until every worker holds its share.
//!
//! Balancing needs no leader: each worker counts the workers that hold live leases, aims at
//! `ceil(leases / workers)`, takes expired or free leases first and steals (at most
//! `max_steal` per interval) only when none is left. Expiry needs no synchronised clocks: a
//! lease is expired when its counter has not moved for `failover_time` since this worker
//! first saw that value.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::leases::{Lease, LeaseError, LeaseTable};

/// A lease this worker holds, shared by its reader (checkpoints) and the renewer.
pub struct HeldLease {
    /// The shard id.
    pub key: String,
    state: tokio::sync::Mutex<Slot>,
    /// Cancelled the moment the lease is lost (renewal or checkpoint refused).
    pub lost: CancellationToken,
}

struct Slot {
    lease: Lease,
    /// When a write of this lease last succeeded.
    last_ok: Instant,
}

impl HeldLease {
    fn new(lease: Lease) -> Self {
        Self {
            key: lease.key.clone(),
            state: tokio::sync::Mutex::new(Slot {
                lease,
                last_ok: Instant::now(),
            }),
            lost: CancellationToken::new(),
        }
    }

    /// The lease as last written.
    pub async fn lease(&self) -> Lease {
        self.state.lock().await.lease.clone()
    }

    /// Runs a fenced write; a refused one marks the lease lost.
    async fn write<F, Fut>(&self, f: F) -> Result<(), LeaseError>
    where
        F: FnOnce(Lease) -> Fut,
        Fut: std::future::Future<Output = Result<Lease, LeaseError>>,
    {
        if self.lost.is_cancelled() {
            return Err(LeaseError::Lost(self.key.clone()));
        }
        let mut slot = self.state.lock().await;
        match f(slot.lease.clone()).await {
            Ok(l) => {
                slot.lease = l;
                slot.last_ok = Instant::now();
                Ok(())
            }
            Err(e) => {
                if matches!(e, LeaseError::Lost(_)) {
                    self.lost.cancel();
                }
                Err(e)
            }
        }
    }

    /// Checkpoints `sequence` (a sequence number or `SHARD_END`).
    pub async fn checkpoint(
        &self,
        table: &LeaseTable,
        me: &str,
        sequence: &str,
    ) -> Result<(), LeaseError> {
        self.write(|l| async move { table.checkpoint(&l, me, sequence).await })
            .await
    }

    /// Records the shard's children.
    pub async fn set_children(
        &self,
        table: &LeaseTable,
        me: &str,
        children: &[String],
    ) -> Result<(), LeaseError> {
        self.write(|l| async move { table.set_children(&l, me, children).await })
            .await
    }

    async fn renew(
        &self,
        table: &LeaseTable,
        me: &str,
        failover: Duration,
    ) -> Result<(), LeaseError> {
        let r = self
            .write(|l| async move { table.renew(&l, me).await })
            .await;
        if r.is_err() {
            let stale = self.state.lock().await.last_ok.elapsed() >= failover;
            if stale {
                // Renewals failed for as long as others wait before taking it: not ours.
                self.lost.cancel();
                return Err(LeaseError::Lost(self.key.clone()));
            }
        }
        r
    }

    async fn release(&self, table: &LeaseTable, me: &str) -> Result<(), LeaseError> {
        self.write(|l| async move { table.release(&l, me).await })
            .await
    }
}

/// What a taker round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Leases taken that were free or expired.
    pub taken: Vec<String>,
    /// Leases taken from another worker.
    pub stolen: Vec<String>,
}

/// The lease side of one worker.
pub struct Coordinator {
    /// The table.
    pub table: LeaseTable,
    /// This worker.
    pub me: String,
    failover: Duration,
    max_steal: usize,
    held: Mutex<BTreeMap<String, Arc<HeldLease>>>,
    /// Lease → (counter, when this worker first saw it).
    seen: Mutex<HashMap<String, (u64, Instant)>>,
}

impl Coordinator {
    /// A worker named `me` on `table`.
    pub fn new(
        table: LeaseTable,
        me: impl Into<String>,
        failover: Duration,
        max_steal: usize,
    ) -> Self {
        Self {
            table,
            me: me.into(),
            failover,
            max_steal: max_steal.max(1),
            held: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// How often leases are renewed: a third of the failover time.
    pub fn renew_interval(&self) -> Duration {
        self.failover / 3
    }

    /// How often the taker runs: the failover time.
    pub fn take_interval(&self) -> Duration {
        self.failover
    }

    /// The leases held now.
    pub fn held(&self) -> Vec<Arc<HeldLease>> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The ids of the leases held now.
    pub fn held_keys(&self) -> Vec<String> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn forget(&self, key: &str) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Renews every held lease; returns those lost (their readers are told through
    /// [`HeldLease::lost`]).
    pub async fn renew_all(&self) -> Vec<String> {
        let mut lost = Vec::new();
        for h in self.held() {
            if h.lost.is_cancelled() {
                lost.push(h.key.clone());
                continue;
            }
            match h.renew(&self.table, &self.me, self.failover).await {
                Ok(()) => {}
                Err(LeaseError::Lost(_)) => lost.push(h.key.clone()),
                Err(e) => {
                    tracing::warn!(lease = %h.key, error = %e, "Could not renew a lease; will try again.")
                }
            }
        }
        for k in &lost {
            self.forget(k);
        }
        lost
    }

    /// Creates leases for shards that have none: `(shard, parents)`; a shard with a parent
    /// still in the stream starts at `TRIM_HORIZON`, the others at `initial`. Returns how
    /// many were created.
    pub async fn sync_shards(
        &self,
        shards: &[(String, Vec<String>)],
        initial: &str,
    ) -> Result<usize, LeaseError> {
        let mut leases = self.table.list().await?;
        self.add_leases(shards, initial, &mut leases).await
    }

    /// [`Self::sync_shards`] on leases just listed; the new ones are added to `leases`.
    pub async fn add_leases(
        &self,
        shards: &[(String, Vec<String>)],
        initial: &str,
        leases: &mut Vec<Lease>,
    ) -> Result<usize, LeaseError> {
        let existing: HashSet<String> = leases.iter().map(|l| l.key.clone()).collect();
        let ids: HashSet<&str> = shards.iter().map(|(s, _)| s.as_str()).collect();
        let mut created = 0;
        for (shard, parents) in shards {
            if existing.contains(shard) {
                continue;
            }
            let has_parent = parents
                .iter()
                .any(|p| ids.contains(p.as_str()) || existing.contains(p));
            let start = if has_parent { "TRIM_HORIZON" } else { initial };
            let lease = Lease::new(shard, start, parents.clone());
            // Created here or a moment ago by another worker: either way it is there now (a
            // take of a copy that is already stale just fails its condition).
            if self.table.create(&lease).await? {
                created += 1;
            }
            leases.push(lease);
        }
        leases.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(created)
    }

    /// One taker round: notes counters, then takes free or expired leases up to this
    /// worker's share, else steals from the most loaded worker.
    pub async fn take_round(&self) -> Result<(Round, Vec<Arc<HeldLease>>), LeaseError> {
        let leases = self.table.list().await?;
        self.take_from(leases).await
    }

    /// [`Self::take_round`] on leases just listed.
    pub async fn take_from(
        &self,
        leases: Vec<Lease>,
    ) -> Result<(Round, Vec<Arc<HeldLease>>), LeaseError> {
        let now = Instant::now();
        let expired: HashSet<String> = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let keys: HashSet<&str> = leases.iter().map(|l| l.key.as_str()).collect();
            seen.retain(|k, _| keys.contains(k.as_str()));
            leases
                .iter()
                .filter(|l| {
                    let e = seen.entry(l.key.clone()).or_insert((l.counter, now));
                    if e.0 != l.counter {
                        *e = (l.counter, now);
                    }
                    l.owner.is_none() || now.duration_since(e.1) >= self.failover
                })
                .map(|l| l.key.clone())
                .collect()
        };
        let by_key: HashMap<&str, &Lease> = leases.iter().map(|l| (l.key.as_str(), l)).collect();
        // A shard is read only once every parent that still has a lease reached its end.
        let ready = |l: &Lease| {
            !l.is_finished()
                && l.parents
                    .iter()
                    .all(|p| by_key.get(p.as_str()).is_none_or(|pl| pl.is_finished()))
        };
        let live: Vec<&Lease> = leases.iter().filter(|l| ready(l)).collect();
        let held: HashSet<String> = self.held_keys().into_iter().collect();
        let mut load: BTreeMap<String, Vec<&Lease>> = BTreeMap::new();
        for l in &live {
            if let Some(o) = &l.owner
                && !expired.contains(&l.key)
                && o != &self.me
            {
                load.entry(o.clone()).or_default().push(l);
            }
        }
        let workers = load.len() + 1;
        let target = live.len().div_ceil(workers);
        let mine = held.len();
        let mut round = Round::default();
        let mut new = Vec::new();
        if mine >= target {
            return Ok((round, new));
        }
        // Free, expired, or ours from an earlier life: the oldest-unchanged first.
        let mut candidates: Vec<&Lease> = live
            .iter()
            .copied()
            .filter(|l| {
                !held.contains(&l.key)
                    && (expired.contains(&l.key) || l.owner.as_deref() == Some(self.me.as_str()))
            })
            .collect();
        candidates.sort_by_key(|l| (l.owner.is_some(), l.key.clone()));
        for l in candidates.into_iter().take(target - mine) {
            match self.table.take(l, &self.me).await {
                Ok(taken) => {
                    round.taken.push(taken.key.clone());
                    new.push(self.hold(taken));
                }
                Err(LeaseError::Lost(_)) => {} // another worker was quicker
                Err(e) => return Err(e),
            }
        }
        if round.taken.is_empty() {
            let busiest = load
                .iter()
                .max_by_key(|(o, ls)| (ls.len(), std::cmp::Reverse((*o).clone())));
            if let Some((_, theirs)) = busiest {
                let n = theirs.len();
                if n > target || (n == target && mine + 1 < target) {
                    let want = self.max_steal.min(target - mine);
                    for l in theirs.iter().take(want) {
                        match self.table.take(l, &self.me).await {
                            Ok(taken) => {
                                round.stolen.push(taken.key.clone());
                                new.push(self.hold(taken));
                            }
                            Err(LeaseError::Lost(_)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Ok((round, new))
    }

    fn hold(&self, lease: Lease) -> Arc<HeldLease> {
        let h = Arc::new(HeldLease::new(lease));
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(h.key.clone(), h.clone());
        h
    }

    /// Lets go of every held lease (after their readers checkpointed).
    pub async fn release_all(&self) -> usize {
        let mut released = 0;
        for h in self.held() {
            match h.release(&self.table, &self.me).await {
                Ok(()) => released += 1,
                Err(e) => {
                    tracing::warn!(lease = %h.key, error = %e, "Could not release a lease; it will expire.")
                }
            }
            self.forget(&h.key);
        }
        released
    }

    /// Lets go of one lease whose shard was read to its end.
    pub fn drop_finished(&self, key: &str) {
        self.forget(key);
    }
}
