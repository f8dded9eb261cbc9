//! What the two binaries, `genesys-intervals` (intervals-cli) and `genesys-intervalsd`
//! (intervals-daemon), set up the same way, in one place:
//!
//! - [`ConfigList`]: a list in a TOML config file, written `"a,b"` or `["a", "b"]`;
//! - [`init_logging`] with [`LogFormat`]: the tracing subscriber on stderr, text or JSON, filtered
//!   by `RUST_LOG`;
//! - [`shutdown_signal`]: a future that resolves on Ctrl-C or SIGTERM;
//! - [`ignore_reload_signals`]: SIGHUP and SIGUSR1 logged and ignored instead of terminating;
//! - [`CLIENT_ID_ENV`], [`CLIENT_SECRET_ENV`], [`ENVIRONMENT_ENV`], [`API_URL_ENV`], [`LOGIN_URL_ENV`]: the
//!   names of the environment variables both binaries read credentials and the API's location from.
//! - [`ErrorChain`]: an error with its causes, as both binaries print it (`error: ...` then
//!   `  caused by: ...` lines).
//!
//! Only the binaries call these, from `main` and its commands: this crate reads no environment
//! variable (the binary passes the `RUST_LOG` value in), and installs signal handlers only when a
//! binary awaits [`shutdown_signal`] or calls [`ignore_reload_signals`]. It depends on no other crate
//! of the workspace. The defaults the binaries share live next to what they are defaults of: what to
//! read (metrics, group-by, granularity, zone, presets) in `intervals_domain::QuerySpec`, the request
//! rate in `intervals_app::Pacer::DEFAULT_REQUESTS_PER_MINUTE`.

mod errors;
mod list;
mod logging;
mod signal;

pub use errors::ErrorChain;
pub use list::ConfigList;

/// The variable holding the OAuth client id (the CLI's, and the daemon's `client_id_env` default).
pub const CLIENT_ID_ENV: &str = "GENESYS_CLIENT_ID";
/// The variable holding the OAuth client secret (the daemon's `client_secret_env` default).
pub const CLIENT_SECRET_ENV: &str = "GENESYS_CLIENT_SECRET";
/// The variable naming the Genesys Cloud environment (`mypurecloud.ie`, `eu-west-1`).
pub const ENVIRONMENT_ENV: &str = "GENESYS_ENVIRONMENT";
/// The variable overriding the API's base URL.
pub const API_URL_ENV: &str = "GENESYS_API_URL";
/// The variable overriding the login service's base URL.
pub const LOGIN_URL_ENV: &str = "GENESYS_LOGIN_URL";
pub use logging::{init_logging, LogFormat};
pub use signal::{ignore_reload_signals, shutdown_signal};
