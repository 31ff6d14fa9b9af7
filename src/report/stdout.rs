//! What a command prints for its reader on standard output. A reader that went away
//! (`inrush report DIR | head`, a pipe closed early) changes nothing: the command's work is done
//! and its files written before it prints, so the rest of the text is dropped and the exit code
//! stays the outcome's (0–4), as grep and ripgrep do, where `print!` would panic (exit 101).
//! Any other write error (a full disk under `> file`) is said on stderr, once.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set at the first failed write: the rest of the output has nowhere to go.
static GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output as it is.
pub fn print(text: &str) {
    print_bytes(text.as_bytes());
}

/// `text`, then a newline.
pub fn println(text: &str) {
    print(&format!("{text}\n"));
}

/// Writes `bytes` to standard output as they are (a generated completion script or manual page).
pub fn print_bytes(bytes: &[u8]) {
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    // Flushed at once, so that a failure is met here rather than in a later implicit flush.
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        GONE.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let _ = writeln!(
                io::stderr(),
                "warning: cannot write to standard output: {e}"
            );
        }
    }
}
