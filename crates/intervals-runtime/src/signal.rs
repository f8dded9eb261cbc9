//! The shutdown signal both binaries wait for.

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, logging which (`signal received`, `signal` =
/// `SIGINT` or `SIGTERM`, at info). The handlers are installed when the future is first polled;
/// one that cannot be installed never fires (the other still does).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "signal received"),
        () = term => tracing::info!(signal = "SIGTERM", "signal received"),
    }
}

/// The signals a daemon is commonly sent to reload its configuration, which `genesys-intervalsd`
/// does not support.
#[cfg(unix)]
const RELOAD_SIGNALS: [(tokio::signal::unix::SignalKind, &str); 2] = [
    (tokio::signal::unix::SignalKind::hangup(), "SIGHUP"),
    (tokio::signal::unix::SignalKind::user_defined1(), "SIGUSR1"),
];

/// Keeps SIGHUP and SIGUSR1 from terminating the process (their default action, which would skip
/// the drain and the lease release): each one received is logged at warn (`signal ignored`,
/// `signal` = `SIGHUP` or `SIGUSR1`) and otherwise ignored. The handlers are installed before this
/// returns; a task spawned on the current runtime logs them. Call it from within the runtime.
pub fn ignore_reload_signals() -> std::io::Result<()> {
    #[cfg(unix)]
    for (kind, name) in RELOAD_SIGNALS {
        let mut stream = tokio::signal::unix::signal(kind)?;
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                tracing::warn!(
                    signal = name,
                    note = "configuration reload is not supported: restart the daemon to apply a changed config",
                    "signal ignored"
                );
            }
        });
    }
    Ok(())
}
