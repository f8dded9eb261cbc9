//! What the two binaries, `genesys-intervals` (intervals-cli) and `genesys-intervalsd`
//! (intervals-daemon), set up the same way, in one place:
//!
//! - [`ConfigList`]: a list in a TOML config file, written `"a,b"` or `["a", "b"]`;
//! - [`init_logging`] with [`LogFormat`]: the tracing subscriber on stderr, text or JSON, filtered
//!   by `RUST_LOG`;
//! - [`shutdown_signal`]: a future that resolves on Ctrl-C or SIGTERM;
//! - [`ignore_reload_signals`]: SIGHUP and SIGUSR1 logged and ignored instead of terminating;
//! - [`ErrorChain`]: an error with its causes, as both binaries print it (`error: ...` then
//!   `  caused by: ...` lines).
//!
//! Only the binaries call these, from `main` and its commands: this crate reads no environment
//! variable (the binary passes the `RUST_LOG` value in), and installs signal handlers only when a
//! binary awaits [`shutdown_signal`] or calls [`ignore_reload_signals`]. It depends on no other crate of the workspace. The defaults
//! the binaries share live next to what they are defaults of: the metrics in
//! `intervals_domain::DEFAULT_METRICS`, the request rate in
//! `intervals_app::Pacer::DEFAULT_REQUESTS_PER_MINUTE`.

mod errors;
mod list;
mod logging;
mod signal;

pub use errors::ErrorChain;
pub use list::ConfigList;
pub use logging::{init_logging, LogFormat};
pub use signal::{ignore_reload_signals, shutdown_signal};
