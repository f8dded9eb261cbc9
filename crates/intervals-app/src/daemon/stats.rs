//! What an org's worker did, shared with the daemon's HTTP endpoints.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// What an org's worker did so far (a copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgSnapshot {
    /// Ticks completed, whatever their outcome.
    pub ticks: u64,
    /// Ticks skipped because another replica held the lease.
    pub ticks_skipped: u64,
    /// Ticks that failed (source refused, store failed, lease lost).
    pub ticks_failed: u64,
    /// Windows (or split parts) written.
    pub windows_written: u64,
    /// Windows that failed for good.
    pub windows_failed: u64,
    /// Metric rows written.
    pub rows_written: u64,
    /// Daily lookbacks completed.
    pub daily_lookbacks: u64,
    /// Whether this worker holds the org's lease.
    pub lease_held: bool,
    /// Whether the last tick completed without a fatal error (a tick skipped because another
    /// replica holds the lease counts); false before the first tick and after a failed one.
    pub ready: bool,
    /// The clock's time at the end of the last tick that read everything it planned.
    pub last_success: Option<DateTime<Utc>>,
    /// The fatal error of the last tick, cleared by a tick without one.
    pub last_error: Option<String>,
    /// The permissions the source refused in the last tick that ran, while the org's other
    /// queries were read (the org stays ready: it makes progress); empty when none was refused.
    /// Kept by a failed tick, cleared by a skipped one.
    pub missing_permissions: Vec<String>,
}

/// Live figures of one org's worker, shared with the HTTP endpoints.
#[derive(Debug)]
pub struct OrgStats {
    org: String,
    state: Mutex<OrgSnapshot>,
    changed: watch::Sender<u64>,
}

impl OrgStats {
    /// Empty figures for `org`.
    pub fn new(org: impl Into<String>) -> Self {
        OrgStats { org: org.into(), state: Mutex::new(OrgSnapshot::default()), changed: watch::channel(0).0 }
    }

    /// The org label.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// A copy of the figures.
    pub fn snapshot(&self) -> OrgSnapshot {
        self.lock().clone()
    }

    /// Resolves once `condition` holds for the figures (checked now and after every change).
    pub async fn wait_until(&self, condition: impl Fn(&OrgSnapshot) -> bool) {
        let mut rx = self.changed.subscribe();
        loop {
            if condition(&self.snapshot()) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, OrgSnapshot> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut OrgSnapshot)) {
        f(&mut self.lock());
        self.changed.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn wait_until_sees_changes() {
        let stats = Arc::new(OrgStats::new("x"));
        let waiter = {
            let stats = Arc::clone(&stats);
            tokio::spawn(async move { stats.wait_until(|s| s.ticks >= 2).await })
        };
        stats.update(|s| s.ticks += 1);
        stats.update(|s| s.ticks += 1);
        waiter.await.unwrap();
    }
}
