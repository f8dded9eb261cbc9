//! Tests of the Genesys HTTP client against the simulator over real HTTP (and, for what the
//! simulator never answers, such as 403 or a refused token, a scripted loopback fake).
//! All timing runs on tokio's paused clock, with the servers in the same runtime.

mod auth;
mod errors;
mod faults;
mod listing;
mod pacing;
mod secrets;
mod support;
mod users;
