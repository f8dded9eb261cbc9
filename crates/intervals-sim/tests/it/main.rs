//! Integration tests of the simulator over real HTTP on 127.0.0.1.

mod aggregates;
mod auth;
mod common;
mod directory;
mod filters;
mod jobs;
mod late;
mod limits;
mod queue;
mod status;
mod truth;
mod validation;
