//! Configuration errors of the Genesys client (before any request is made).

/// Why a [`super::GenesysClient`] or [`super::Environment`] could not be built. Messages never
/// contain the client secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The environment is neither a domain such as `mypurecloud.ie` nor a region such as `eu-west-1`.
    #[error("invalid Genesys environment {input:?}: {hint}")]
    InvalidEnvironment { input: String, hint: String },
    /// A URL override could not be parsed or used.
    #[error("invalid {what} {url:?}: {hint}")]
    InvalidUrl { what: &'static str, url: String, hint: String },
    /// A plain-http URL for a host that is not the local machine.
    #[error("{what} {url:?} must use https (plain http is accepted only for 127.0.0.1, ::1 or localhost)")]
    InsecureUrl { what: &'static str, url: String },
    /// Neither an environment nor an API URL was given.
    #[error("no Genesys environment: set the environment (e.g. mypurecloud.ie or eu-west-1) or an API URL")]
    NoEnvironment,
    /// Client id or secret missing.
    #[error("missing {what}: set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (an OAuth client-credentials client)")]
    MissingCredentials { what: &'static str },
    /// A setting out of range.
    #[error("invalid setting {name}: {hint}")]
    InvalidSetting { name: &'static str, hint: String },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}
