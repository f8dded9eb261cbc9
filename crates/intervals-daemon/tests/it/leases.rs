//! The PostgreSQL lease store: take, renew, refuse, release, take over after expiry, and one
//! winner among concurrent takers.

use std::time::Duration;

use intervals_adapters::leases::PgLeaseStore;
use intervals_adapters::sinks::PostgresSink;
use intervals_app::{LeaseGrant, LeaseStore};
use sqlx::PgPool;

const MINUTE: Duration = Duration::from_secs(60);

async fn store(pool: &PgPool) -> PgLeaseStore {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    PgLeaseStore::from_pool(sink.pool().clone()).await.unwrap()
}

#[sqlx::test(migrations = false)]
async fn take_renew_refuse_release(pool: PgPool) {
    let leases = store(&pool).await;
    let LeaseGrant::Held { expires_at: first } = leases.acquire("emea", "a", MINUTE).await.unwrap() else {
        panic!("a free lease is granted")
    };
    let LeaseGrant::Held { expires_at: renewed } = leases.acquire("emea", "a", MINUTE).await.unwrap() else {
        panic!("the holder renews")
    };
    assert!(renewed >= first);
    assert_eq!(
        leases.acquire("emea", "b", MINUTE).await.unwrap(),
        LeaseGrant::HeldBy { holder: "a".into(), expires_at: renewed }
    );
    assert!(
        matches!(leases.acquire("apac", "b", MINUTE).await.unwrap(), LeaseGrant::Held { .. }),
        "leases are per org"
    );

    leases.release("emea", "b").await.unwrap();
    assert_eq!(leases.holder("emea").await.unwrap().map(|(h, _)| h).as_deref(), Some("a"), "only the holder releases");
    leases.release("emea", "a").await.unwrap();
    assert_eq!(leases.holder("emea").await.unwrap(), None);
    assert!(matches!(leases.acquire("emea", "b", MINUTE).await.unwrap(), LeaseGrant::Held { .. }));
}

#[sqlx::test(migrations = false)]
async fn an_expired_lease_is_taken_over(pool: PgPool) {
    let leases = store(&pool).await;
    // A zero lifetime expires at once (by the database's clock).
    assert!(matches!(leases.acquire("emea", "a", Duration::ZERO).await.unwrap(), LeaseGrant::Held { .. }));
    assert!(matches!(leases.acquire("emea", "b", MINUTE).await.unwrap(), LeaseGrant::Held { .. }));
    assert!(
        matches!(leases.acquire("emea", "a", MINUTE).await.unwrap(), LeaseGrant::HeldBy { ref holder, .. } if holder == "b")
    );
}

#[sqlx::test(migrations = false)]
async fn concurrent_takers_get_one_winner(pool: PgPool) {
    let leases = std::sync::Arc::new(store(&pool).await);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let leases = leases.clone();
            tokio::spawn(async move { leases.acquire("emea", &format!("replica-{i}"), MINUTE).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), LeaseGrant::Held { .. }) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[sqlx::test(migrations = false)]
async fn without_the_migrations_the_store_says_so(pool: PgPool) {
    let err = PgLeaseStore::from_pool(pool).await.unwrap_err();
    assert!(err.to_string().contains("ingest_leases"), "{err}");
}
