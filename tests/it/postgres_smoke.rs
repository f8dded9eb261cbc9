//! The test PostgreSQL is reachable, sqlx migrations apply, and a row round-trips.

use sqlx::PgPool;

#[sqlx::test(migrations = "fixtures/smoke-migrations")]
async fn migration_applies_and_a_row_round_trips(pool: PgPool) -> sqlx::Result<()> {
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await?;
    assert_eq!(applied, vec![(1, "smoke".to_owned())]);

    let id: i64 = sqlx::query_scalar("INSERT INTO smoke (label, value_ms) VALUES ($1, $2) RETURNING id")
        .bind("agent-1 ünïcode")
        .bind(1_450_300_i64)
        .fetch_one(&pool)
        .await?;
    let row: (i64, String, i64) =
        sqlx::query_as("SELECT id, label, value_ms FROM smoke WHERE id = $1").bind(id).fetch_one(&pool).await?;
    assert_eq!(row, (id, "agent-1 ünïcode".to_owned(), 1_450_300));

    // The migration's constraint is live: a duplicate label is rejected.
    let duplicate =
        sqlx::query("INSERT INTO smoke (label, value_ms) VALUES ($1, 0)").bind("agent-1 ünïcode").execute(&pool).await;
    assert!(duplicate.is_err(), "the unique constraint from 0001_smoke.sql is missing");
    Ok(())
}
