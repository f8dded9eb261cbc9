//! Tests of the Genesys HTTP client against the simulator over real HTTP.
