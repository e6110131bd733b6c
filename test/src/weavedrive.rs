//! WeaveDrive for the wasmtime host: `/data/<txid>`, `/tx/<txid>`, `/block/<height>` served
//! synchronously from a local directory and/or an Arweave gateway (HTTP range requests).
//!
//! Semantics follow `@permaweb/weavedrive` 0.0.18 as the AO loader's glue uses it:
//! - `open(path)` gives a file descriptor ≥ 3 (the emscripten FS numbering: the lowest free fd;
//!   0, 1 and 2 are the standard streams).
//! - each fd has a position; `read(fd, dst, len)` copies up to `len` bytes from the position
//!   and advances it (0 at the end); `fd_seek(fd, off, whence)` moves it (SEEK_END with 0
//!   gives the size).
//! - a missing file: the glue throws `HALT: FILE NOT FOUND` out of the whole `handle` call.
//!   Here `open` returns **-1** instead (and the host notes `WeaveDrive: HALT: FILE NOT FOUND
//!   <path>` on stderr), so the module can raise a Lua error and the process goes on. A module
//!   must treat any fd <= 0 as a failure: the glue returns 0 for path categories it does not
//!   know (and when no WeaveDrive is configured), and so does this host.
//!   With [`crate::CuOptions::strict_weavedrive`] the host traps with `HALT: FILE NOT FOUND`
//!   like the glue.
//!
//! Local layout: `<data_dir>/<txid>` for `/data/<txid>`, `<data_dir>/tx/<txid>` and
//! `<data_dir>/block/<height>` for the header files. Gateway: `HEAD {gw}/{txid}` for the size,
//! `GET {gw}/{txid}` with `Range: bytes=a-b` for data (1 MiB read-ahead), `GET {gw}/tx/{id}` and
//! `GET {gw}/block/height/{h}` for headers (returned as the gateway sends them).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

const READ_AHEAD: u64 = 1 << 20;

/// Where a WeaveDrive file comes from.
pub(crate) enum Source {
    Local(File),
    Http {
        url: String,
        cache_start: u64,
        cache: Vec<u8>,
    },
    Memory(Vec<u8>),
}

pub(crate) struct OpenFile {
    pub path: String,
    pub size: u64,
    pub position: u64,
    pub source: Source,
}

/// The result of an `open`.
pub(crate) enum OpenResult {
    Fd(i32),
    NotFound(String),
    /// A path category WeaveDrive does not serve (the glue returns 0).
    Unsupported,
}

pub(crate) struct WeaveDrive {
    data_dir: Option<PathBuf>,
    gateway: Option<String>,
    agent: Option<ureq::Agent>,
    pub files: BTreeMap<i32, OpenFile>,
    /// Bytes served, for statistics.
    pub bytes_read: u64,
}

fn valid_name(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl WeaveDrive {
    pub fn new(data_dir: Option<PathBuf>, gateway: Option<String>) -> Self {
        let gateway = gateway.map(|g| g.trim_end_matches('/').to_string());
        let agent = gateway.as_ref().map(|_| {
            ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(30))
                .timeout_read(Duration::from_secs(120))
                .build()
        });
        WeaveDrive {
            data_dir,
            gateway,
            agent,
            files: BTreeMap::new(),
            bytes_read: 0,
        }
    }

    fn next_fd(&self) -> i32 {
        let mut fd = 3;
        while self.files.contains_key(&fd) {
            fd += 1;
        }
        fd
    }

    fn local(&self, rel: &Path) -> Option<PathBuf> {
        let p = self.data_dir.as_ref()?.join(rel);
        p.is_file().then_some(p)
    }

    fn http_get_all(&self, url: &str) -> Result<Option<Vec<u8>>, String> {
        let agent = self.agent.as_ref().expect("gateway agent");
        match agent.get(url).call() {
            Ok(resp) => {
                let mut buf = Vec::new();
                resp.into_reader()
                    .read_to_end(&mut buf)
                    .map_err(|e| format!("GET {url}: {e}"))?;
                Ok(Some(buf))
            }
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(format!("GET {url}: {e}")),
        }
    }

    /// Size of a gateway transaction's data: HEAD, then a one-byte range request.
    fn http_size(&self, url: &str) -> Result<Option<u64>, String> {
        let agent = self.agent.as_ref().expect("gateway agent");
        match agent.head(url).call() {
            Ok(resp) => {
                if let Some(n) = resp
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse().ok())
                {
                    return Ok(Some(n));
                }
            }
            Err(ureq::Error::Status(404, _)) => return Ok(None),
            Err(ureq::Error::Status(..)) => {}
            Err(e) => return Err(format!("HEAD {url}: {e}")),
        }
        match agent.get(url).set("Range", "bytes=0-0").call() {
            Ok(resp) => {
                if let Some(total) = resp
                    .header("Content-Range")
                    .and_then(|v| v.rsplit('/').next())
                    .and_then(|v| v.trim().parse().ok())
                {
                    return Ok(Some(total));
                }
                if let Some(n) = resp
                    .header("Content-Length")
                    .and_then(|v| v.trim().parse().ok())
                {
                    if resp.status() == 200 {
                        return Ok(Some(n));
                    }
                }
                Err(format!("GET {url}: no size in the response"))
            }
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(ureq::Error::Status(416, _)) => Ok(Some(0)),
            Err(e) => Err(format!("GET {url}: {e}")),
        }
    }

    /// Opens a WeaveDrive path. Errors are host failures (I/O, network), not "not found".
    pub fn open(&mut self, path: &str) -> Result<OpenResult, String> {
        let mut parts = path.splitn(3, '/');
        let (empty, category, id) = (parts.next(), parts.next(), parts.next());
        let (Some(""), Some(category), Some(id)) = (empty, category, id) else {
            return Ok(OpenResult::Unsupported);
        };
        if !matches!(category, "data" | "tx" | "block") {
            return Ok(OpenResult::Unsupported);
        }
        if !valid_name(id) {
            return Ok(OpenResult::NotFound(path.to_string()));
        }
        let file = match category {
            "data" => {
                if let Some(p) = self.local(Path::new(id)) {
                    let f = File::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    let size = f
                        .metadata()
                        .map_err(|e| format!("{}: {e}", p.display()))?
                        .len();
                    Some((size, Source::Local(f)))
                } else if let Some(gw) = &self.gateway {
                    let url = format!("{gw}/{id}");
                    self.http_size(&url)?.map(|size| {
                        (
                            size,
                            Source::Http {
                                url,
                                cache_start: 0,
                                cache: Vec::new(),
                            },
                        )
                    })
                } else {
                    None
                }
            }
            _ => {
                let rel = Path::new(category).join(id);
                if let Some(p) = self.local(&rel) {
                    let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                    Some((bytes.len() as u64, Source::Memory(bytes)))
                } else if let Some(gw) = &self.gateway {
                    let url = if category == "tx" {
                        format!("{gw}/tx/{id}")
                    } else {
                        format!("{gw}/block/height/{id}")
                    };
                    self.http_get_all(&url)?
                        .map(|b| (b.len() as u64, Source::Memory(b)))
                } else {
                    None
                }
            }
        };
        match file {
            None => Ok(OpenResult::NotFound(path.to_string())),
            Some((size, source)) => {
                let fd = self.next_fd();
                self.files.insert(
                    fd,
                    OpenFile {
                        path: path.to_string(),
                        size,
                        position: 0,
                        source,
                    },
                );
                Ok(OpenResult::Fd(fd))
            }
        }
    }

    pub fn close(&mut self, fd: i32) -> bool {
        self.files.remove(&fd).is_some()
    }

    /// Reads up to `dst.len()` bytes at the fd's position into `dst`, advancing it.
    pub fn read(&mut self, fd: i32, dst: &mut [u8]) -> Result<usize, String> {
        let agent = self.agent.clone();
        let f = self
            .files
            .get_mut(&fd)
            .ok_or_else(|| format!("bad WeaveDrive fd {fd}"))?;
        let avail = f.size.saturating_sub(f.position);
        let want = (dst.len() as u64).min(avail) as usize;
        if want == 0 {
            return Ok(0);
        }
        let dst = &mut dst[..want];
        match &mut f.source {
            Source::Local(file) => {
                file.seek(SeekFrom::Start(f.position))
                    .map_err(|e| format!("{}: {e}", f.path))?;
                file.read_exact(dst)
                    .map_err(|e| format!("{}: {e}", f.path))?;
            }
            Source::Memory(bytes) => {
                let p = f.position as usize;
                dst.copy_from_slice(&bytes[p..p + want]);
            }
            Source::Http {
                url,
                cache_start,
                cache,
            } => {
                let mut done = 0usize;
                let pos = f.position;
                // From the read-ahead cache first.
                if pos >= *cache_start && pos < *cache_start + cache.len() as u64 {
                    let off = (pos - *cache_start) as usize;
                    let n = (cache.len() - off).min(want);
                    dst[..n].copy_from_slice(&cache[off..off + n]);
                    done = n;
                }
                if done < want {
                    let start = pos + done as u64;
                    let rest = (want - done) as u64;
                    let end = (start + rest.max(READ_AHEAD)).min(f.size); // exclusive
                    let agent = agent.as_ref().expect("gateway agent");
                    let resp = agent
                        .get(url)
                        .set("Range", &format!("bytes={}-{}", start, end - 1))
                        .call()
                        .map_err(|e| format!("GET {url} bytes={start}-{}: {e}", end - 1))?;
                    // A gateway that ignores `Range` answers 200 with the whole body.
                    let full = resp.status() == 200;
                    let mut reader = resp.into_reader();
                    if full && start > 0 {
                        std::io::copy(&mut (&mut reader).take(start), &mut std::io::sink())
                            .map_err(|e| format!("GET {url}: {e}"))?;
                    }
                    let mut buf = vec![0u8; (end - start) as usize];
                    reader
                        .read_exact(&mut buf)
                        .map_err(|e| format!("GET {url}: {e}"))?;
                    let n = want - done;
                    dst[done..].copy_from_slice(&buf[..n]);
                    *cache_start = start;
                    *cache = buf;
                }
            }
        }
        f.position += want as u64;
        self.bytes_read += want as u64;
        Ok(want)
    }

    /// lseek; returns the new position or an errno (wasi numbering: EINVAL 28).
    pub fn seek(&mut self, fd: i32, offset: i64, whence: i32) -> Option<Result<u64, i32>> {
        let f = self.files.get_mut(&fd)?;
        let base: i128 = match whence {
            0 => 0,
            1 => f.position as i128,
            2 => f.size as i128,
            _ => return Some(Err(28)),
        };
        let new = base + offset as i128;
        if new < 0 {
            return Some(Err(28));
        }
        f.position = new as u64;
        Some(Ok(f.position))
    }
}
