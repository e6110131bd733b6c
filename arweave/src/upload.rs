//! Publishing a file: prepare and sign a data transaction, post its header, then its chunks.
//!
//! Uploads are resumable. Before anything is posted, the signed header is saved in a state
//! file next to the input (`FILE.arweave-upload.json`, see [`state_path_for`]), and the state
//! is updated after each chunk. Running [`upload_file`] again with the same file, wallet and
//! tags continues from there: the transaction is not signed again and its fee is not paid
//! twice. The state file holds only public data (the signed header), never the wallet.
//! It is kept after completion, so re-running a finished upload posts nothing.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::gateway::{ChunkUpload, TxStatus};
use crate::merkle::{MerkleTree, MAX_CHUNK_SIZE};
use crate::{Error, Gateway, Result, SaltLength, Tag, Transaction, Wallet};

/// Knobs for [`prepare_file`] and [`upload_file`]. `Default` is right for real use.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// PSS salt length; arweave-js's maximum by default.
    pub salt: SaltLength,
    /// Data up to this size is posted inside `POST /tx`; larger data goes through `/chunk`.
    pub inline_limit: u64,
    /// Where to keep the resume state; `None` means [`state_path_for`] the input.
    pub state_path: Option<PathBuf>,
    /// The fee in winston; `None` asks the gateway (`GET /price/{size}`).
    pub reward: Option<u128>,
    /// Stop with [`Error::Interrupted`] after posting this many chunks in this run, leaving
    /// the state file for a later resume. For tests of resumption, and for pacing.
    pub stop_after_chunks: Option<usize>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            salt: SaltLength::Max,
            inline_limit: MAX_CHUNK_SIZE,
            state_path: None,
            reward: None,
            stop_after_chunks: None,
        }
    }
}

/// A signed transaction for a file, not yet posted.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Signed, without inline data: print `tx.to_json_pretty()` for a dry run.
    pub tx: Transaction,
    pub tree: MerkleTree,
    /// Whether the data would be posted inline rather than in chunks.
    pub inline: bool,
}

/// What [`upload_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    /// The transaction id (base64url).
    pub id: String,
    pub data_size: u64,
    /// The fee paid, in winston.
    pub reward: u128,
    /// Whether this run continued an earlier one from the state file.
    pub resumed: bool,
    /// Whether this run posted the transaction header (false when resuming after it).
    pub header_posted: bool,
    /// Chunks posted by this run.
    pub chunks_posted: usize,
    pub chunks_total: usize,
    pub state_path: PathBuf,
}

/// `FILE.arweave-upload.json` next to `FILE`.
pub fn state_path_for(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".arweave-upload.json");
    file.with_file_name(name)
}

/// Hashes the file, asks the gateway for an anchor and (unless given) the price, and signs.
/// Posts nothing: this is what `--dry-run` shows.
pub fn prepare_file(
    gateway: &Gateway,
    wallet: &Wallet,
    path: &Path,
    tags: &[Tag],
    opts: &UploadOptions,
) -> Result<Prepared> {
    let tree = hash_file(path)?;
    let reward = match opts.reward {
        Some(r) => r,
        None => gateway.price(tree.data_size())?,
    };
    let anchor = gateway.tx_anchor()?;
    let mut tx = Transaction::new_data(Some(&tree), tags.to_vec(), anchor, reward);
    tx.sign(wallet, opts.salt)?;
    Ok(Prepared {
        inline: tree.data_size() <= opts.inline_limit,
        tx,
        tree,
    })
}

/// Uploads a file as one transaction, resuming from its state file if there is one.
///
/// `progress(bytes_done, bytes_total)` is called as data goes up (starting from what an
/// earlier run already uploaded). Returns [`Error::Interrupted`] when
/// `opts.stop_after_chunks` stops it early, and [`Error::State`] when the state file belongs
/// to another file content, wallet or tag set (delete it to publish anew).
pub fn upload_file(
    gateway: &Gateway,
    wallet: &Wallet,
    path: &Path,
    tags: &[Tag],
    opts: &UploadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<UploadReport> {
    let state_path = opts
        .state_path
        .clone()
        .unwrap_or_else(|| state_path_for(path));

    let (mut state, tree, resumed) = match UploadState::load(&state_path)? {
        Some(state) => {
            let tree = hash_file(path)?;
            state.check_matches(&state_path, wallet, &tree, tags)?;
            (state, tree, true)
        }
        None => {
            let prepared = prepare_file(gateway, wallet, path, tags, opts)?;
            let state = UploadState {
                version: STATE_VERSION,
                gateway: gateway.url().to_string(),
                file_size: prepared.tree.data_size(),
                inline: prepared.inline,
                tx: prepared.tx,
                header_posted: false,
                chunks_done: 0,
                complete: false,
            };
            // Saved before posting: if we die right after the post, the next run finds the
            // transaction on the gateway instead of signing and paying for a new one.
            state.save(&state_path)?;
            (state, prepared.tree, false)
        }
    };

    let total = tree.data_size();
    let chunks_total = if state.inline { 0 } else { tree.chunks().len() };
    let mut report = UploadReport {
        id: state.tx.id_b64(),
        data_size: total,
        reward: state.tx.reward,
        resumed,
        header_posted: false,
        chunks_posted: 0,
        chunks_total,
        state_path: state_path.clone(),
    };
    if state.complete {
        progress(total, total);
        return Ok(report);
    }

    // A state from another gateway, or from a run that died around the post: ask first.
    if state.header_posted && state.gateway != gateway.url() {
        state.header_posted = false;
        state.gateway = gateway.url().to_string();
    }
    if !state.header_posted && resumed && gateway.tx_status(&report.id)? != TxStatus::NotFound {
        state.header_posted = true;
        state.save(&state_path)?;
    }

    if !state.header_posted {
        if state.inline {
            let mut tx = state.tx.clone();
            tx.data = read_range(path, 0, total)?;
            gateway.post_tx(&tx)?;
            state.complete = true;
        } else {
            gateway.post_tx(&state.tx.header())?;
        }
        state.header_posted = true;
        report.header_posted = true;
        state.save(&state_path)?;
    }

    let chunks = tree.chunks();
    let done_bytes = |n: usize| if n == 0 { 0 } else { chunks[n - 1].range.end };
    if !state.complete {
        progress(done_bytes(state.chunks_done), total);
        let mut file = open(path)?;
        let mut buf = vec![0u8; MAX_CHUNK_SIZE as usize];
        while state.chunks_done < chunks.len() {
            if opts.stop_after_chunks == Some(report.chunks_posted) {
                return Err(Error::Interrupted {
                    chunks_done: state.chunks_done,
                    chunks_total,
                });
            }
            let proof = &chunks[state.chunks_done];
            let bytes = &mut buf[..(proof.range.end - proof.range.start) as usize];
            file.seek(SeekFrom::Start(proof.range.start))
                .and_then(|_| file.read_exact(bytes))
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            gateway.post_chunk(&ChunkUpload::new(&state.tx.data_root, total, proof, bytes))?;
            state.chunks_done += 1;
            report.chunks_posted += 1;
            state.save(&state_path)?;
            progress(done_bytes(state.chunks_done), total);
        }
        state.complete = true;
        state.save(&state_path)?;
    }
    progress(total, total);
    Ok(report)
}

const STATE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct UploadState {
    version: u32,
    /// The gateway the header was posted to.
    gateway: String,
    file_size: u64,
    inline: bool,
    /// The signed header (no data).
    tx: Transaction,
    header_posted: bool,
    /// Chunks are posted in order; this many are done.
    chunks_done: usize,
    complete: bool,
}

impl UploadState {
    fn load(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let state: UploadState = serde_json::from_str(&text).map_err(|e| Error::State {
            path: path.into(),
            message: format!("unreadable ({e}); delete it to start over"),
        })?;
        if state.version != STATE_VERSION {
            return Err(Error::State {
                path: path.into(),
                message: format!("version {} is not {STATE_VERSION}", state.version),
            });
        }
        Ok(Some(state))
    }

    fn save(&self, path: &Path) -> Result<()> {
        // Write then rename, so an interruption never leaves half a state file.
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    fn check_matches(
        &self,
        path: &Path,
        wallet: &Wallet,
        tree: &MerkleTree,
        tags: &[Tag],
    ) -> Result<()> {
        let mismatch = |what: &str| {
            Err(Error::State {
                path: path.into(),
                message: format!(
                    "belongs to transaction {} with {what}; delete it to publish anew",
                    self.tx.id_b64()
                ),
            })
        };
        if self.tx.owner != wallet.owner() {
            return mismatch("another wallet");
        }
        if self.file_size != tree.data_size() || self.tx.data_size != tree.data_size() as u128 {
            return mismatch("a different file size");
        }
        if tree.data_size() > 0 && self.tx.data_root != tree.data_root() {
            return mismatch("different file content");
        }
        if self.tx.tags != tags {
            return mismatch("different tags");
        }
        // The header may have been edited by hand; never post a broken one.
        self.tx
            .verify()
            .or_else(|e| mismatch(&format!("an invalid signature ({e})")))
    }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))
}

fn hash_file(path: &Path) -> Result<MerkleTree> {
    let file = open(path)?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
        .len();
    MerkleTree::from_reader(BufReader::with_capacity(1 << 20, file), size)
        .map_err(|e| Error::io(format!("hashing {}", path.display()), e))
}

fn read_range(path: &Path, start: u64, len: u64) -> Result<Vec<u8>> {
    let mut file = open(path)?;
    let mut buf = vec![0u8; len as usize];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_sits_next_to_the_input() {
        assert_eq!(
            state_path_for(Path::new("/m/model.bin")),
            Path::new("/m/model.bin.arweave-upload.json")
        );
        assert_eq!(
            state_path_for(Path::new("AOS.wasm")),
            Path::new("AOS.wasm.arweave-upload.json")
        );
    }
}
