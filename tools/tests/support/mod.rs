//! Shared helpers for the aos-llama integration tests.
#![allow(dead_code)]

/// The part of the `tempfile` crate that `arweave/tests/support` (the arlocal gateway and npm
/// helpers, included by `#[path]`) uses, since `tempfile` is not a dependency of this crate.
/// A test crate that includes that support module declares `extern crate self as tempfile;`
/// and `pub use support::tempfile::{tempdir, TempDir};` at its root.
pub mod tempfile {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system temp dir, removed with its contents when dropped.
    #[derive(Debug)]
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A new, empty, uniquely named directory (`create_dir` fails if the name is taken).
    pub fn tempdir() -> std::io::Result<TempDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!(
                "aos-llama-test-{}-{n}-{nanos:08x}",
                std::process::id()
            ));
            match std::fs::create_dir(&p) {
                Ok(()) => return Ok(TempDir(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
