//! `cargo xtask chaos`: the fault suite of `tests/it/chaos.rs` (its `chaos_table` test, which runs
//! every case and prints the table) through the same test step as `cargo xtask test` (binaries built
//! once, PostgreSQL in `DATABASE_URL`), with the output shown so that the table prints. The scale is
//! `GENESYS_CHAOS`: `full` (150 agents, 30 days, 10 kills), else small (the normal tests' scale).

use crate::StepError;

/// Runs `cargo xtask test -p intervals-e2e chaos::chaos_table --no-capture [ARGS...]` with
/// `GENESYS_CHAOS` set (`small` unless it says `full`).
pub(crate) fn run(args: &[String]) -> Result<(), StepError> {
    let scale = match std::env::var("GENESYS_CHAOS").as_deref() {
        Ok("full") => "full",
        _ => "small",
    };
    println!("==> chaos: {scale} scale (GENESYS_CHAOS=full for the full one)");
    // Inherited by the test step's cargo and so by the test processes. Xtask is single-threaded.
    std::env::set_var("GENESYS_CHAOS", scale);
    let mut test_args: Vec<String> =
        ["-p", "intervals-e2e", "chaos::chaos_table"].iter().map(|s| (*s).to_owned()).collect();
    if crate::nextest_available() {
        test_args.push("--no-capture".to_owned());
        test_args.extend(args.iter().cloned());
    } else {
        test_args.extend(args.iter().cloned());
        test_args.extend(["--".to_owned(), "--nocapture".to_owned(), "--test-threads=1".to_owned()]);
    }
    crate::run_tests(&test_args)
}
