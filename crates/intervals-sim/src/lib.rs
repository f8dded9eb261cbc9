//! intervals-sim
