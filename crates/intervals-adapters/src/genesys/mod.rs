//! Genesys Cloud HTTP client.
