//! Sinks: where rows go.
