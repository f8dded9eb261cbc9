//! `cargo xtask chaos`: the fault suite of `tests/it/chaos.rs` at full scale (`GENESYS_CHAOS=full`),
//! through the same test step as `cargo xtask test` (binaries built once, PostgreSQL in
//! `DATABASE_URL`), with the output shown so that its table prints.

use crate::StepError;

/// Runs `cargo xtask test -p intervals-e2e chaos:: --no-capture [ARGS...]` with `GENESYS_CHAOS=full`.
pub(crate) fn run(args: &[String]) -> Result<(), StepError> {
    // Inherited by the test step's cargo and so by the test processes. Xtask is single-threaded.
    std::env::set_var("GENESYS_CHAOS", "full");
    let mut test_args: Vec<String> = ["-p", "intervals-e2e", "chaos::"].iter().map(|s| (*s).to_owned()).collect();
    if crate::nextest_available() {
        test_args.push("--no-capture".to_owned());
        test_args.extend(args.iter().cloned());
    } else {
        test_args.extend(args.iter().cloned());
        test_args.extend(["--".to_owned(), "--nocapture".to_owned(), "--test-threads=1".to_owned()]);
    }
    crate::run_tests(&test_args)
}
