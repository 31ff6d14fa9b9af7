//! Reading a file a user names — a scenario and the files it names, a run's files for `report`
//! and `compare` — bounded: a path to a device (`/dev/zero`) or a socket is refused with a
//! message, where reading it would grow without end and the command would never answer. A pipe
//! is read (`inrush run <(envsubst < s.toml)`), up to the same bound as a file.

use std::io::Read;
use std::path::Path;

/// The largest file read whole: far above any scenario, and above the HdrHistogram log of a
/// day-long run (a few KB per second).
pub const MAX_BYTES: u64 = 1 << 30;

/// The bytes of the regular file (or pipe) at `path`, at most [`MAX_BYTES`].
pub fn read(path: &Path) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !(meta.is_file() || is_pipe(&meta)) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a directory, a device or a socket)",
        ));
    }
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("larger than {} MiB", MAX_BYTES >> 20),
        )
    };
    if meta.len() > MAX_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded again as it is read: a file can grow meanwhile.
    std::fs::File::open(path)?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(unix)]
fn is_pipe(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type())
}

#[cfg(not(unix))]
fn is_pipe(_: &std::fs::Metadata) -> bool {
    false
}

/// The text of the regular file at `path` ([`read`]), which must be UTF-8.
pub fn read_to_string(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused_and_files_read() {
        let e = read(Path::new("/dev/zero")).expect_err("a device");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(read(dir.path()).is_err());
        let file = dir.path().join("f");
        std::fs::write(&file, "name = \"x\"\n").expect("write");
        assert_eq!(
            read_to_string(&file).expect("a file"),
            "name = \"x\"\n".to_string()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_is_read_as_a_file_is() {
        // As `inrush run <(envsubst < s.toml)` gives one.
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
        // SAFETY: a NUL-terminated path we own; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, "name = \"x\"\n"))
        };
        assert_eq!(read_to_string(&fifo).expect("a pipe"), "name = \"x\"\n");
        writer.join().expect("writer").expect("written");
    }

    #[test]
    fn every_file_a_scenario_names_is_read_through_here() {
        // A feeder, a CA, a client key pointed at a device: an error at once, not a read that
        // never ends (each used to grow by gigabytes until memory ran out).
        let zero = Path::new("/dev/zero");
        let feeder = crate::compiled::flow::feeder::Feeder::load("f", zero, false);
        assert!(feeder.is_err_and(|e| e.contains("not a regular file")));
        let chain = crate::clients::tls::read_chain(zero);
        assert!(chain.is_err_and(|e| e.contains("not a regular file")));
        let key = crate::clients::tls::read_key(zero);
        assert!(key.is_err_and(|e| e.contains("not a regular file")));
    }
}
