//! How a run learns it should stop early: the signals a terminal, `timeout`, Docker, Kubernetes
//! and CI runners send.

/// Resolves on the first SIGINT (Ctrl-C), SIGTERM or SIGHUP: what a terminal, `timeout`, Docker,
/// Kubernetes and CI runners send to cancel, so a cancelled run still stops its users and writes
/// its report. A signal this process was started ignoring (`nohup` ignores SIGHUP) stays ignored,
/// and one whose handler cannot be installed is simply not waited for.
#[cfg(unix)]
pub(super) async fn stop_requested() {
    async fn first(signal: Option<tokio::signal::unix::Signal>) {
        match signal {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    async fn ctrl_c() {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind: SignalKind| {
        (!ignored_at_start(kind.as_raw_value()))
            .then(|| signal(kind).ok())
            .flatten()
    };
    let (term, hup) = (
        listen(SignalKind::terminate()),
        listen(SignalKind::hangup()),
    );
    tokio::select! {
        _ = ctrl_c() => {}
        _ = first(term) => {}
        _ = first(hup) => {}
    }
}

/// Elsewhere only Ctrl-C is there to wait for.
#[cfg(not(unix))]
pub(super) async fn stop_requested() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Whether `signal` is ignored (SIG_IGN), as `nohup` leaves SIGHUP: installing a handler would
/// undo what the user asked for.
#[cfg(unix)]
fn ignored_at_start(signal: libc::c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the current disposition into the
    // zeroed struct we own.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}
