//! The two timerfd system calls the clock makes. Linux and Android have timerfd; elsewhere
//! [`create`] fails with `Unsupported`, and workers sleep on tokio's millisecond timer instead
//! (`WorkerCtx::new`): the same schedule, with tokio's precision (lag up to ~1 ms more).

use std::io;
use std::os::fd::OwnedFd;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

/// A non-blocking, close-on-exec timer on the monotonic clock.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the descriptor it returns is owned by the OwnedFd below.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Arms the timer to expire once, `wait` from now (at least 1 ns: zero would disarm it).
/// Whether it was armed.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn arm(fd: &OwnedFd, wait: Duration) -> bool {
    let nanos = wait.as_nanos().max(1);
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: (nanos / 1_000_000_000) as libc::time_t,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        },
    };
    // SAFETY: valid descriptor and a fully initialised itimerspec.
    unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) == 0 }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn create() -> io::Result<OwnedFd> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no timerfd on this platform",
    ))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn arm(_: &OwnedFd, _: Duration) -> bool {
    false
}
