//! End-to-end tests live in tests/it. This library holds what they need beside the simulator and the
//! binaries: [`PgServer`], a PostgreSQL server of one test's own, which the test really stops and
//! starts again (the server that `cargo xtask test` shares between all tests must never be
//! restarted).

/// A throwaway PostgreSQL server (the `pg-harness` crate, as `cargo xtask` uses): trust
/// authentication on 127.0.0.1, no fsync with [`Tuning::Test`]. `PgServer::create` starts one;
/// `stop` is a fast shutdown (every session terminated, connections refused until `start`);
/// dropping it stops the server and removes its folder, and a guardian shell does the same if the
/// test process dies without dropping it (a kill, Ctrl-C).
pub use pg_harness::Cluster as PgServer;
pub use pg_harness::Tuning;
