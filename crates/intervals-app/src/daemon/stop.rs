//! Shutdown: a [`StopTrigger`] asks, every clone of the matching [`Stop`] sees it.

use std::time::Duration;

use tokio::sync::watch;

/// Asks the tasks of a daemon to stop ([`stop_signal`]).
#[derive(Debug)]
pub struct StopTrigger(watch::Sender<bool>);

/// Whether a stop was asked for; cheap to clone. Dropping the [`StopTrigger`] counts as a stop.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

/// A new stop signal: the trigger and the side that waits for it.
pub fn stop_signal() -> (StopTrigger, Stop) {
    let (tx, rx) = watch::channel(false);
    (StopTrigger(tx), Stop(rx))
}

impl StopTrigger {
    /// Asks every holder of the matching [`Stop`] to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Stop {
    /// Whether a stop was asked for (or the trigger is gone).
    pub fn is_requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once a stop is asked for (or the trigger is gone).
    pub async fn requested(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Resolves `drain` after a stop is asked for.
    pub(super) async fn drained(&self, drain: Duration) {
        self.requested().await;
        tokio::time::sleep(drain).await;
    }
}
