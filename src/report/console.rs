//! What a command says to its reader: results on standard output, warnings and errors on
//! standard error. A reader that went away (`inrush report DIR | head`, `… 2>&1 | head -1`, a
//! pipe closed early) changes nothing: the command's work is done and its files written before it
//! prints, so the rest of the text is dropped and the exit code stays the outcome's (0–4), as
//! grep and ripgrep do, where `print!`/`eprint!` would panic (exit 101). Any other write error
//! on standard output (a full disk under `> file`) is said on stderr; one on stderr has nowhere
//! to be said. No state is kept between writes: once the reader is gone, each later write fails
//! the same way at once.

use std::io::{self, Write};

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
    let mut out = io::stdout().lock();
    // Flushed at once, so that a failure is met here rather than in a later implicit flush.
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln(&format!("warning: cannot write to standard output: {e}"));
        }
    }
}

/// Writes `text` to standard error as it is.
pub fn eprint(text: &str) {
    // Standard error is unbuffered; a failed write is dropped: there is no other place to say it.
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// `text`, then a newline, on standard error.
pub fn eprintln(text: &str) {
    eprint(&format!("{text}\n"));
}
