//! Node.js helpers for the tests: installs the npm packages of `test/arlocal/` (arweave-js and
//! arlocal) once into a cache outside the repository, runs the helper scripts, and runs an
//! arlocal gateway for the duration of a test.
//!
//! Cache: `$AOS_NPM_CACHE` or `~/.cache/aos-llama/npm`, one directory per hash of
//! package.json + package-lock.json. A cold install compiles sqlite3 (several minutes).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// `test/arlocal/` in the repository.
pub fn helpers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../test/arlocal")
}

fn require_tool(name: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{name}` was not found on PATH. The arweave-tx tests need Node.js (>= 18) and npm to \
         compute reference values with arweave-js and to run the arlocal gateway; install them \
         (Debian: apt-get install nodejs npm)."
    );
}

/// The `node_modules` directory with the helpers' packages, installed on first use.
pub fn node_modules() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(install)
}

fn install() -> PathBuf {
    require_tool("node");
    require_tool("npm");
    let src = helpers_dir();
    let manifest = std::fs::read(src.join("package.json")).expect("read test/arlocal/package.json");
    let lock =
        std::fs::read(src.join("package-lock.json")).expect("read test/arlocal/package-lock.json");
    let key: String = Sha256::new()
        .chain_update(&manifest)
        .chain_update(&lock)
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let root = match std::env::var_os("AOS_NPM_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set; set AOS_NPM_CACHE");
            PathBuf::from(home).join(".cache/aos-llama/npm")
        }
    };
    let dir = root.join(&key);
    let modules = dir.join("node_modules");
    if modules.join("arlocal").is_dir() && modules.join("arweave").is_dir() {
        return modules;
    }

    // Install into a private directory and rename it into place: a concurrent run either
    // sees nothing or a complete install.
    let tmp = root.join(format!("{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
    std::fs::write(tmp.join("package.json"), &manifest).unwrap();
    std::fs::write(tmp.join("package-lock.json"), &lock).unwrap();
    eprintln!(
        "installing arweave-js and arlocal with npm into {} (a cold install takes several minutes)",
        dir.display()
    );
    let started = Instant::now();
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&tmp)
        .output()
        .expect("run npm ci");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("npm ci in {} failed:\n{}", tmp.display(), tail.join("\n"));
    }
    eprintln!("npm ci took {:.0?}", started.elapsed());
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => {}
        Err(_) if modules.join("arlocal").is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => panic!("move {} to {}: {e}", tmp.display(), dir.display()),
    }
    modules
}

/// Runs `node test/arlocal/SCRIPT ARGS...` and returns its stdout.
pub fn run_node(script: &str, args: &[&Path]) -> String {
    let modules = node_modules();
    let out = Command::new("node")
        .arg(helpers_dir().join(script))
        .args(args)
        .env("NODE_PATH", modules)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "node {script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("node output is UTF-8")
}

/// An arlocal gateway on 127.0.0.1, stopped (by its PID) when dropped, even if the test fails.
pub struct ArLocal {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl ArLocal {
    pub fn start() -> ArLocal {
        let modules = node_modules();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = std::fs::File::create(dir.path().join("arlocal.log")).expect("log file");
        let mut child = Command::new("node")
            .arg(helpers_dir().join("server.js"))
            .arg(dir.path().join("db"))
            .env("NODE_PATH", modules)
            // arlocal writes a `./logs` file: keep it in the temp dir, out of the repository.
            .current_dir(dir.path())
            // The server exits when its stdin closes, i.e. when this process dies.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start node server.js");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut guard = ArLocal {
            child,
            url: String::new(),
            _dir: dir,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_default();
        let port = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v["port"].as_u64());
        let Some(port) = port else {
            let log =
                std::fs::read_to_string(guard._dir.path().join("arlocal.log")).unwrap_or_default();
            panic!("arlocal did not start (first line {line:?}); its log:\n{log}");
        };
        guard.url = format!("http://127.0.0.1:{port}");
        eprintln!(
            "arlocal pid {} listening on {}",
            guard.child.id(),
            guard.url
        );
        guard
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("arlocal.log")).unwrap_or_default()
    }
}

impl Drop for ArLocal {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
