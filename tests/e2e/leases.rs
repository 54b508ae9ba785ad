//! The shard-lease protocol (KCL 2.x) against dynalite: races, steals, zombies, release, and
//! the retried renewal whose first attempt landed.

use std::time::Duration;

use lumina_plugins::kinesis::receiver::coordinator::Coordinator;
use lumina_plugins::kinesis::receiver::leases::{Lease, LeaseError, LeaseTable};

use crate::harness::services::DynamoDb;
use crate::harness::wait_for_async;

async fn table(db: &DynamoDb, name: &str) -> LeaseTable {
    let t = LeaseTable::new(db.client.clone(), name);
    t.ensure().await.unwrap();
    // A second `ensure` finds the table and leaves it alone.
    t.ensure().await.unwrap();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_racing_for_one_lease_give_it_to_exactly_one() {
    let db = DynamoDb::start();
    let t = table(&db, "race").await;
    for round in 0..20 {
        let key = format!("shardId-{round:012}");
        assert!(
            t.create(&Lease::new(&key, "TRIM_HORIZON", vec![]))
                .await
                .unwrap()
        );
        // Creating it again does nothing.
        assert!(!t.create(&Lease::new(&key, "LATEST", vec![])).await.unwrap());
        let seen = t.get(&key).await.unwrap().unwrap();
        let (a, b) = tokio::join!(t.take(&seen, "worker-a"), t.take(&seen, "worker-b"));
        let winners = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {a:?} {b:?}");
        let loser = if a.is_ok() { &b } else { &a };
        assert_eq!(loser, &Err(LeaseError::Lost(key.clone())));
        let now = t.get(&key).await.unwrap().unwrap();
        let winner = if a.is_ok() { "worker-a" } else { "worker-b" };
        assert_eq!(now.owner.as_deref(), Some(winner));
        assert_eq!(now.counter, seen.counter + 1);
        assert_eq!(now.checkpoint, "TRIM_HORIZON");
        assert_eq!(now.owner_switches, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_can_neither_renew_nor_checkpoint_and_a_landed_retry_counts_as_done() {
    let db = DynamoDb::start();
    let t = table(&db, "zombie").await;
    t.create(&Lease::new("shardId-000000000000", "TRIM_HORIZON", vec![]))
        .await
        .unwrap();
    let free = t.get("shardId-000000000000").await.unwrap().unwrap();
    let mine = t.take(&free, "old").await.unwrap();
    let mine = t
        .checkpoint(&mine, "old", "49590000000000000000000001")
        .await
        .unwrap();
    // The renewal lands but its reply is lost; the retry (same expected counter) finds the
    // item exactly as it would have written it, and counts it as done.
    let renewed = t.renew(&mine, "old").await.unwrap();
    assert_eq!(t.renew(&mine, "old").await.unwrap(), renewed);
    // Another worker takes the lease over (it saw it expire).
    let theirs = t.take(&renewed, "new").await.unwrap();
    assert_eq!(theirs.owner_switches, 1);
    // The old owner's renewal and checkpoint are refused, and the checkpoint is untouched.
    assert_eq!(
        t.renew(&renewed, "old").await,
        Err(LeaseError::Lost(renewed.key.clone()))
    );
    assert_eq!(
        t.checkpoint(&renewed, "old", "49590000000000000000000099")
            .await,
        Err(LeaseError::Lost(renewed.key.clone()))
    );
    let now = t.get(&renewed.key).await.unwrap().unwrap();
    assert_eq!(now.owner.as_deref(), Some("new"));
    assert_eq!(now.checkpoint, "49590000000000000000000001");
    // A release by someone who does not hold it is refused; by the owner it frees the lease.
    assert!(t.release(&now, "old").await.is_err());
    let released = t.release(&now, "new").await.unwrap();
    let stored = t.get(&now.key).await.unwrap().unwrap();
    assert_eq!(stored, released);
    assert_eq!(stored.owner, None);
    assert_eq!(stored.counter, now.counter + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_balance_by_taking_then_stealing_and_the_victim_finds_out_at_its_renewal() {
    let db = DynamoDb::start();
    let t = table(&db, "balance").await;
    let failover = Duration::from_millis(900);
    let shards: Vec<(String, Vec<String>)> = (0..4)
        .map(|i| (format!("shardId-{i:012}"), vec![]))
        .collect();
    let a = Coordinator::new(t.clone(), "a", failover, 1);
    let b = Coordinator::new(t.clone(), "b", failover, 1);
    assert_eq!(a.sync_shards(&shards, "TRIM_HORIZON").await.unwrap(), 4);
    assert_eq!(b.sync_shards(&shards, "TRIM_HORIZON").await.unwrap(), 0);
    // Alone, `a` takes every free lease.
    let (round, _) = a.take_round().await.unwrap();
    assert_eq!(round.taken.len(), 4);
    // `b` finds none free or expired, so it steals one per round until it has its share.
    let (round, _) = b.take_round().await.unwrap();
    assert_eq!((round.taken.len(), round.stolen.len()), (0, 1));
    let (round, _) = b.take_round().await.unwrap();
    assert_eq!((round.taken.len(), round.stolen.len()), (0, 1));
    let (round, _) = b.take_round().await.unwrap();
    assert_eq!(round, Default::default(), "b already has its share");
    // `a` learns at its next renewal that two leases are gone, and keeps the other two.
    let lost = a.renew_all().await;
    assert_eq!(lost.len(), 2);
    assert_eq!(a.held_keys().len(), 2);
    assert!(a.held().iter().all(|h| !h.lost.is_cancelled()));
    let owners: Vec<Option<String>> = t
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.owner)
        .collect();
    assert_eq!(
        owners.iter().filter(|o| o.as_deref() == Some("a")).count(),
        2
    );
    assert_eq!(
        owners.iter().filter(|o| o.as_deref() == Some("b")).count(),
        2
    );
    // `a` stops (releases its leases): `b` takes them at once, without waiting for expiry.
    assert_eq!(a.release_all().await, 2);
    let (round, _) = b.take_round().await.unwrap();
    assert_eq!(round.taken.len(), 2);
    // `b` dies without releasing: `c` takes its leases only once they have not moved for
    // the failover time.
    let c = Coordinator::new(t.clone(), "c", failover, 1);
    let first_seen = std::time::Instant::now();
    let (round, _) = c.take_round().await.unwrap();
    assert_eq!(round.taken.len(), 0, "nothing is expired yet");
    assert!(round.stolen.len() <= 1);
    // Taker rounds until `c` holds every lease: none is taken as expired before the failover
    // time has passed since `c` first saw it.
    wait_for_async(Duration::from_secs(10), || async {
        let (round, _) = c.take_round().await.unwrap();
        if !round.taken.is_empty() {
            assert!(
                first_seen.elapsed() >= failover,
                "taken as expired after {:?}",
                first_seen.elapsed()
            );
        }
        match c.held_keys().len() {
            4 => Ok(()),
            n => Err(format!("c holds {n} leases")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_shard_waits_for_its_parents_to_end() {
    let db = DynamoDb::start();
    let t = table(&db, "children").await;
    let failover = Duration::from_secs(5);
    let shards = vec![
        ("shardId-000000000000".to_owned(), vec![]),
        (
            "shardId-000000000001".to_owned(),
            vec!["shardId-000000000000".to_owned()],
        ),
    ];
    let a = Coordinator::new(t.clone(), "a", failover, 1);
    a.sync_shards(&shards, "LATEST").await.unwrap();
    let leases = t.list().await.unwrap();
    // The parent starts where configured, the child at its beginning.
    assert_eq!(leases[0].checkpoint, "LATEST");
    assert_eq!(leases[1].checkpoint, "TRIM_HORIZON");
    assert_eq!(leases[1].parents, vec!["shardId-000000000000".to_owned()]);
    let (round, held) = a.take_round().await.unwrap();
    assert_eq!(round.taken, vec!["shardId-000000000000".to_owned()]);
    // The parent reaches its end: now the child is taken.
    held[0].checkpoint(&t, "a", "SHARD_END").await.unwrap();
    a.drop_finished("shardId-000000000000");
    let (round, _) = a.take_round().await.unwrap();
    assert_eq!(round.taken, vec!["shardId-000000000001".to_owned()]);
}
