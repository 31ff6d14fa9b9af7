//! How a command learns it should stop early: the signals a terminal, `timeout`, Docker,
//! Kubernetes and CI runners send (SIGINT from Ctrl-C, SIGTERM, SIGHUP).
//!
//! The signals are watched for the whole command, not per run: once tokio has installed a
//! handler for a signal, the signal no longer kills the process, and one that arrives while
//! nobody listens is lost. `find-capacity` runs many steps in one process; a Ctrl-C between two
//! steps (while a report is written, or a step starts) must still end the search, so one
//! [`Interrupt`] counts every signal from the start of the command to its end.

use tokio::sync::watch;

use crate::error::Error;

/// The stop signals received since [`Interrupt::install`]: how many, and the last one's name.
/// Cheap to clone; the watcher thread ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Interrupt(watch::Receiver<Received>);

#[derive(Debug, Clone, Copy, Default)]
struct Received {
    count: u32,
    last: Option<&'static str>,
}

impl Interrupt {
    /// Starts watching: a thread of its own with a small runtime, so the handlers stay
    /// installed between runs and whatever runtime a run builds. Returns once they are
    /// installed: from then on a signal is counted; one before kills the process, as Ctrl-C
    /// does to a command that has not started its work.
    ///
    /// Call it before building any other tokio runtime. tokio installs a signal's handler and
    /// only then registers the listener; a signal in between is handed out by whichever
    /// runtime's driver reads it first, to no listener, and is lost — while the handler keeps
    /// it from killing the process. A Ctrl-C while a run waited for `--start-at` was lost this
    /// way (the run waited on, an hour away). With no other runtime yet, the one driver that
    /// could hand it out is this thread's, busy installing the handlers until the listener is
    /// there.
    pub fn install() -> Result<Interrupt, Error> {
        let (tx, rx) = watch::channel(Received::default());
        let (ready, installed) = std::sync::mpsc::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Run(format!("cannot start the signal watcher: {e}")))?;
        std::thread::Builder::new()
            .name("inrush-signals".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut listeners = Listeners::new();
                    let _ = ready.send(());
                    loop {
                        tokio::select! {
                            name = listeners.next() => tx.send_modify(|r| {
                                r.count += 1;
                                r.last = Some(name);
                            }),
                            () = tx.closed() => break,
                        }
                    }
                });
            })
            .map_err(|e| Error::Run(format!("cannot start the signal watcher: {e}")))?;
        // An error here is a watcher that died before it listened: nothing to wait for.
        let _ = installed.recv();
        Ok(Interrupt(rx))
    }

    /// Signals received so far.
    pub fn count(&self) -> u32 {
        self.0.borrow().count
    }

    /// The last stop signal received, by name (`SIGINT (Ctrl-C)`, `SIGTERM`, `SIGHUP`).
    pub fn last(&self) -> Option<&'static str> {
        self.0.borrow().last
    }

    /// Whether any stop signal has been received.
    pub fn requested(&self) -> bool {
        self.count() > 0
    }

    /// Resolves once more than `seen` signals have been received (never, if the watcher could
    /// not listen).
    pub async fn beyond(&self, seen: u32) {
        let mut rx = self.0.clone();
        if rx.wait_for(|r| r.count > seen).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The signals listened to, installed once. A signal this process was started ignoring (`nohup`
/// ignores SIGHUP) stays ignored, and one whose handler cannot be installed is not waited for.
#[cfg(unix)]
struct Listeners(Vec<(tokio::signal::unix::Signal, &'static str)>);

#[cfg(unix)]
impl Listeners {
    fn new() -> Listeners {
        use tokio::signal::unix::{signal, SignalKind};
        // Ctrl-C is always listened to (as tokio's `ctrl_c` does), even in a background job
        // a shell started ignoring it: the user asked for the run to stop.
        let kinds = [
            (SignalKind::interrupt(), true, "SIGINT (Ctrl-C)"),
            (SignalKind::terminate(), false, "SIGTERM"),
            (SignalKind::hangup(), false, "SIGHUP"),
        ];
        Listeners(
            kinds
                .into_iter()
                .filter(|(k, always, _)| *always || !ignored_at_start(k.as_raw_value()))
                .filter_map(|(k, _, name)| Some((signal(k).ok()?, name)))
                .collect(),
        )
    }

    /// The next signal of any of them, by name.
    async fn next(&mut self) -> &'static str {
        if self.0.is_empty() {
            return std::future::pending().await;
        }
        let names: Vec<&'static str> = self.0.iter().map(|(_, n)| *n).collect();
        let waits = self.0.iter_mut().map(|(s, _)| Box::pin(s.recv()));
        let (_, i, _) = futures_util::future::select_all(waits).await;
        names[i]
    }
}

/// Elsewhere only Ctrl-C is there to wait for.
#[cfg(not(unix))]
struct Listeners;

#[cfg(not(unix))]
impl Listeners {
    fn new() -> Listeners {
        Listeners
    }

    async fn next(&mut self) -> &'static str {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        "Ctrl-C"
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
