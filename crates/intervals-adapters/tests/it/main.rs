//! Integration tests of intervals-adapters: one binary, a module per feature.

mod genesys;
mod outputs;
mod sinks;
