//! The one integration test binary of intervals-report: a module per concern.

mod content;
mod fixture;
mod html;
mod large;
mod snapshot;
