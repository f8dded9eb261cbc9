//! What makes a worker tick: a fixed period, or a manual trigger.

use std::pin::Pin;
use std::time::Duration;

use futures::stream::{self, Stream};
use tokio::sync::watch;

/// A stream of ticks; the worker ticks once per item and stops when it ends.
pub type Ticks = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// A tick now, then every `period` (a late tick delays the next ones; none are bunched).
pub fn interval_ticks(period: Duration) -> Ticks {
    let mut interval = tokio::time::interval(period.max(Duration::from_millis(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Box::pin(stream::unfold(interval, |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    }))
}

/// A tick whenever the watched value changes (a manual trigger: `tx.send_modify(|n| *n += 1)`);
/// ends when the sender is dropped. Changes made while a tick runs coalesce into one tick.
pub fn triggered_ticks(trigger: watch::Receiver<u64>) -> Ticks {
    Box::pin(stream::unfold(trigger, |mut rx| async move {
        rx.changed().await.ok()?;
        Some(((), rx))
    }))
}
