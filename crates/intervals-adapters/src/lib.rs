//! intervals-adapters
