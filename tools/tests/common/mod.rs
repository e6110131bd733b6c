//! Shared by the CLI's integration tests: the reference files test/reference/fetch.sh and
//! make-models.py provide (real GGUFs, random-weight GGUFs of every architecture).
#![allow(dead_code)] // each test file uses some of these

use std::path::PathBuf;

fn missing(what: &str) {
    let msg = format!("{what}: run test/reference/fetch.sh and `source ~/.cache/aos-llama/reference/env.sh`");
    if std::env::var("AOS_REQUIRE_REFERENCE").as_deref() == Ok("1") {
        panic!("{msg}");
    }
    eprintln!("\n*** SKIPPED: {msg}\n");
}

/// A file named by an environment variable (fetch.sh's env.sh sets them), or `None` with a
/// note; under AOS_REQUIRE_REFERENCE=1 (test.sh) a missing file fails.
pub fn reference_file(var: &str) -> Option<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_file());
    if path.is_none() {
        missing(&format!("{var} is not set"));
    }
    path
}

/// `$AOS_REF_CACHE/random-models/NAME`, a random-weight GGUF of make-models.py (test.sh
/// writes them before the workspace tests), or `None` with a note as [`reference_file`].
pub fn random_model(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("AOS_REF_CACHE").map(|d| PathBuf::from(d).join("random-models").join(name)).filter(|p| p.is_file());
    if path.is_none() {
        missing(&format!("{name} is not in $AOS_REF_CACHE/random-models (make-models.py writes it)"));
    }
    path
}
