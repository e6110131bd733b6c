//! WeaveDrive: Arweave data as files, through the AO loader's async imports.
//!
//! `/data/<txid>` (transaction data), `/tx/<txid>`, `/block/<height>`. The imports are
//! async JS in the real loader: every call path that reaches them is instrumented by
//! binaryen's Asyncify (build.sh lists exactly these imports and `invoke_vjj`). The
//! wasmtime host serves them synchronously. File size comes from the imported WASI
//! `fd_seek` (SEEK_END, offset 0), as aos does.
//!
//! [`File`] implements `std::io::Read`: callers read in chunks straight into their own
//! buffers, so a 2 GB model never needs a second copy.

use std::ffi::{c_char, CString};
use std::io;

#[link(wasm_import_module = "env")]
extern "C" {
    fn __asyncjs__weavedrive_open(path: *const c_char, mode: *const c_char) -> i32;
    fn __asyncjs__weavedrive_read(fd: i32, dst: *mut u8, len: usize) -> i32;
    fn __asyncjs__weavedrive_close(fd: i32) -> i32;
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn fd_seek(fd: i32, offset: i64, whence: i32, new_offset: *mut u64) -> i32;
}

const SEEK_SET: i32 = 0;
const SEEK_END: i32 = 2;
/// Largest single read handed to the host (the import's length is an i32 result).
pub const MAX_CHUNK: usize = 64 << 20;

/// An open WeaveDrive file, read front to back.
pub struct File {
    fd: i32,
    size: u64,
    pos: u64,
}

impl File {
    /// Opens `path` (e.g. `/data/<txid>`). Under the real loader a missing file aborts
    /// the message with `HALT: FILE NOT FOUND` (thrown by the glue, not returned).
    pub fn open(path: &str) -> io::Result<File> {
        let c_path = CString::new(path)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: both arguments are NUL-terminated strings that outlive the call.
        let fd = unsafe { __asyncjs__weavedrive_open(c_path.as_ptr(), c"r".as_ptr()) };
        // fds 0-2 are the standard streams: 0 is what the glue returns without a drive.
        if fd < 3 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("WeaveDrive: cannot open {path} (no drive attached, or not found)"),
            ));
        }
        let mut file = File { fd, size: 0, pos: 0 };
        file.size = file.seek_raw(0, SEEK_END)?;
        file.seek_raw(0, SEEK_SET)?;
        Ok(file)
    }

    fn seek_raw(&mut self, offset: i64, whence: i32) -> io::Result<u64> {
        let mut out = 0u64;
        // SAFETY: `out` is a valid, writable u64 for the duration of the call.
        let errno = unsafe { fd_seek(self.fd, offset, whence, &mut out) };
        if errno != 0 {
            return Err(io::Error::other(format!("WeaveDrive: fd_seek failed (errno {errno})")));
        }
        Ok(out)
    }

    /// Total size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Reads the whole rest of the file into one exactly-sized buffer.
    pub fn read_to_vec(&mut self) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.size - self.pos)
            .map_err(|_| io::Error::other("WeaveDrive: file too large"))?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(len)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "WeaveDrive: out of memory"))?;
        buf.resize(len, 0);
        io::Read::read_exact(self, &mut buf)?;
        Ok(buf)
    }
}

impl io::Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(MAX_CHUNK);
        if want == 0 || self.pos >= self.size {
            return Ok(0);
        }
        // SAFETY: `buf` is valid for writes of `want` bytes.
        let n = unsafe { __asyncjs__weavedrive_read(self.fd, buf.as_mut_ptr(), want) };
        if n < 0 {
            return Err(io::Error::other(format!("WeaveDrive: read failed ({n})")));
        }
        self.pos += n as u64;
        Ok(n as usize)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: fd came from __asyncjs__weavedrive_open and is closed once.
        unsafe { __asyncjs__weavedrive_close(self.fd) };
    }
}
