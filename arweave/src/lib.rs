//! Publishing to Arweave without the old SDK crates.
//!
//! The pieces, each in its own module:
//! - [`wallet`]: RSA-4096 JWK wallets (load, generate, save, address). Private parts are never
//!   printed: `Debug` shows only the address.
//! - [`deep_hash`]: arweave-js `deepHash` (SHA-384), the message a v2 transaction signs.
//! - [`merkle`]: `data_root` over 256 KiB chunks and the per-chunk proofs `POST /chunk` wants,
//!   exactly as arweave-js `merkle.ts` builds them (including the last-two-chunks rebalance).
//! - [`transaction`]: the v2 transaction, RSA-PSS signing with a chosen salt length, and
//!   verification that accepts any salt length.
//! - [`gateway`]: a small blocking HTTP client for an Arweave gateway (and arlocal's test
//!   endpoints).
//! - [`upload`]: prepare, sign and upload a file, resumable through a state file next to it.
//!
//! A typical publish:
//! ```no_run
//! use arweave_tx::{Gateway, Tag, Wallet, upload};
//! # fn main() -> Result<(), arweave_tx::Error> {
//! let wallet = Wallet::load("wallet.json")?;
//! let gateway = Gateway::new("https://arweave.net");
//! let tags = vec![Tag::new("Content-Type", "application/octet-stream")];
//! let report = upload::upload_file(
//!     &gateway, &wallet, "model.bin".as_ref(), &tags, &upload::UploadOptions::default(),
//!     &mut |done, total| eprintln!("{done}/{total}"),
//! )?;
//! println!("{}", report.id);
//! # Ok(()) }
//! ```

pub mod b64;
pub mod deep_hash;
mod error;
pub mod gateway;
pub mod merkle;
pub mod transaction;
pub mod upload;
pub mod wallet;

pub use error::{Error, Result};
pub use gateway::Gateway;
pub use merkle::MerkleTree;
pub use transaction::{SaltLength, Tag, Transaction};
pub use wallet::Wallet;
