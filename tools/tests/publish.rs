//! `aos-llama wallet` / `publish` / `eval --gateway` end to end, with the real binary against a
//! real arlocal gateway on 127.0.0.1 (installed from npm by the arweave crate's test support,
//! started on a free port and stopped by PID when the test ends, pass or fail):
//! a new wallet, AOS.wasm as an AO module, stories260K in chunks, its tokenizer, read back by
//! id, found by GraphQL tags, re-publishing without paying twice, and finally the compute unit
//! loading the published model by txid from that gateway and telling the known-good story.
//!
//! Needs Node.js and npm (a clear failure, not a skip, without them) and AOS.wasm at the repo
//! root (./build.sh; test.sh builds it first). Inputs are copied into a temp dir, since
//! `publish` writes its resume state (`FILE.arweave-upload.json`) next to the input.

#[path = "../../arweave/tests/support/mod.rs"]
mod arlocal;
mod common;
use common::reference_file;

use tempfile::tempdir;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use arweave_tx::gateway::TxStatus;
use arweave_tx::{Gateway, Transaction};
use serde_json::Value;
use sha2::{Digest, Sha256};

const MODULE_FORMAT: &str = "wasm64-unknown-emscripten-draft_2024_02_15";
const MINTED: u128 = 1_000_000_000_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the binary; panics with its stderr unless it succeeds.
fn aos_llama(args: &[&str]) -> Output {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_aos-llama"))
        .args(args)
        .output()
        .expect("run aos-llama");
    eprintln!(
        "aos-llama {} ({:.1?})",
        args[..2.min(args.len())].join(" "),
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "aos-llama {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The one line a command prints, checked to be a 43-character base64url id or address.
fn single_id(o: &Output) -> String {
    let out = stdout(o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stdout, got {out:?}");
    let id = lines[0].to_string();
    assert_eq!(id.len(), 43, "{id:?}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{id:?} is base64url"
    );
    id
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// (name, value) pairs of a transaction's tags.
fn tags_of(tx: &Transaction) -> Vec<(String, String)> {
    tx.tags
        .iter()
        .map(|t| (t.name_str(), t.value_str()))
        .collect()
}

fn has_tag(tags: &[(String, String)], name: &str, value: &str) -> bool {
    tags.iter().any(|(n, v)| n == name && v == value)
}

#[test]
fn wallet_publish_read_back_query_and_eval_by_txid_on_arlocal() {
    let started = Instant::now();
    let aos_wasm = repo().join("AOS.wasm");
    assert!(
        aos_wasm.is_file(),
        "AOS.wasm is missing: build it with ./build.sh (test.sh does)"
    );
    let models = repo().join("../shared/models/stories260K");
    let expected_story = std::fs::read_to_string(
        repo().join("llama/tests/data/llama2c-run-greedy200.txt"),
    )
    .unwrap();

    let arlocal = arlocal::ArLocal::start();
    let url = arlocal.url.clone();
    let gateway = Gateway::new(&url);

    // Inputs in a temp dir: publish writes its state file next to the input.
    let dir = tempdir().unwrap();
    let work = dir.path();
    let module = work.join("AOS.wasm");
    let model = work.join("stories260K.bin");
    let tokenizer = work.join("tok512.bin");
    std::fs::copy(&aos_wasm, &module).unwrap();
    std::fs::copy(models.join("stories260K.bin"), &model).unwrap();
    std::fs::copy(models.join("tok512.bin"), &tokenizer).unwrap();
    let module_bytes = std::fs::read(&module).unwrap();
    let model_bytes = std::fs::read(&model).unwrap();
    let tokenizer_bytes = std::fs::read(&tokenizer).unwrap();
    assert_eq!(model_bytes.len(), 1_056_540);
    assert!(
        model_bytes.len() > 1 << 20,
        "the model is uploaded in chunks"
    );

    // --- wallet new / wallet address: the key goes to the file, only the address to stdout.
    let wallet = work.join("wallet.json");
    let new = aos_llama(&["wallet", "new", "-o", &s(&wallet)]);
    let address = single_id(&new);
    let jwk: Value = serde_json::from_slice(&std::fs::read(&wallet).unwrap()).unwrap();
    assert_eq!(jwk["kty"], "RSA");
    for secret in ["d", "p", "q", "dp", "dq", "qi"] {
        let v = jwk[secret]
            .as_str()
            .unwrap_or_else(|| panic!("JWK has {secret}"));
        let head = &v[..32];
        assert!(
            !stdout(&new).contains(head) && !stderr(&new).contains(head),
            "wallet new printed the private key ({secret})"
        );
    }
    assert!(!stdout(&new).contains("kty") && !stderr(&new).contains("kty"));
    let again = aos_llama(&["wallet", "address", &s(&wallet)]);
    assert_eq!(single_id(&again), address);
    assert!(!stdout(&again).contains(&jwk["d"].as_str().unwrap()[..32]));

    // --- mint (GET /mint/{addr}/{winston}).
    gateway.mint(&address, MINTED).unwrap();
    assert_eq!(gateway.balance(&address).unwrap(), MINTED);
    let base = ["--gateway", url.as_str(), "--wallet"];
    let w = s(&wallet);

    // --- publish --dry-run: a signed header with the module tags; nothing posted.
    let dry = aos_llama(&[
        "publish",
        &s(&module),
        "--kind",
        "module",
        base[0],
        base[1],
        base[2],
        &w,
        "--dry-run",
    ]);
    let header = stdout(&dry);
    let json: Value = serde_json::from_str(&header)
        .unwrap_or_else(|e| panic!("--dry-run prints the header as JSON ({e}):\n{header}"));
    assert!(
        !json["signature"].as_str().unwrap_or_default().is_empty(),
        "{header}"
    );
    assert_eq!(json["data_size"], module_bytes.len().to_string());
    let dry_tx = Transaction::from_json(&header).expect("the dry-run header parses");
    dry_tx.verify().expect("the dry-run header is signed");
    assert_eq!(dry_tx.owner_address(), address);
    let dry_tags = tags_of(&dry_tx);
    for (n, v) in [
        ("Data-Protocol", "ao"),
        ("Variant", "ao.TN.1"),
        ("Type", "Module"),
        ("Module-Format", MODULE_FORMAT),
        ("Input-Encoding", "JSON-1"),
        ("Output-Encoding", "JSON-1"),
        ("Content-Type", "application/wasm"),
        ("Extension", "WeaveDrive"),
    ] {
        assert!(
            has_tag(&dry_tags, n, v),
            "dry-run tags lack {n}={v}: {dry_tags:?}"
        );
    }
    assert!(dry_tags.iter().any(|(n, _)| n == "Memory-Limit"));
    assert!(dry_tags.iter().any(|(n, _)| n == "Compute-Limit"));
    let dry_id = dry_tx.id_b64();
    assert!(stderr(&dry).contains("nothing posted"), "{}", stderr(&dry));
    assert!(!stderr(&dry).contains(&jwk["d"].as_str().unwrap()[..32]));
    assert_eq!(
        gateway.balance(&address).unwrap(),
        MINTED,
        "a dry run pays nothing"
    );
    assert_eq!(gateway.tx_status(&dry_id).unwrap(), TxStatus::NotFound);
    assert!(
        std::fs::read_dir(work).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".arweave-upload.json")),
        "a dry run writes no state file"
    );

    // --- publish the module, the model (chunked) and the tokenizer.
    let module_id = single_id(&aos_llama(&[
        "publish",
        &s(&module),
        "--kind",
        "module",
        base[0],
        base[1],
        base[2],
        &w,
        "--quiet",
    ]));
    assert_ne!(module_id, dry_id);
    let after_module = gateway.balance(&address).unwrap();
    assert!(after_module < MINTED, "publishing pays a fee");

    let published = aos_llama(&[
        "publish",
        &s(&model),
        "--kind",
        "model",
        base[0],
        base[1],
        base[2],
        &w,
    ]);
    let model_id = single_id(&published);
    let report = stderr(&published);
    assert!(report.contains("published:"), "{report}");
    assert!(report.contains("5 of 5 chunks posted this run"), "{report}");
    assert!(model
        .with_file_name("stories260K.bin.arweave-upload.json")
        .is_file());

    let tokenizer_id = single_id(&aos_llama(&[
        "publish",
        &s(&tokenizer),
        base[0],
        base[1],
        base[2],
        &w,
        "--quiet",
        "--tag",
        "Content-Type=application/octet-stream",
        "--tag",
        "Type=Tokenizer",
    ]));
    let balance = gateway.balance(&address).unwrap();

    // --- the same publish again after success: the same txid, nothing posted, no fee.
    let rerun = aos_llama(&[
        "publish",
        &s(&model),
        "--kind",
        "model",
        base[0],
        base[1],
        base[2],
        &w,
    ]);
    assert_eq!(
        single_id(&rerun),
        model_id,
        "re-publishing gives the same txid"
    );
    let report = stderr(&rerun);
    assert!(
        report.contains("0 of 5 chunks posted this run (header was already posted)"),
        "{report}"
    );
    assert_eq!(gateway.balance(&address).unwrap(), balance, "no second fee");

    gateway.mine().unwrap();

    // After mining too (the module's state file says it is complete).
    let rerun = aos_llama(&[
        "publish",
        &s(&module),
        "--kind",
        "module",
        base[0],
        base[1],
        base[2],
        &w,
        "--quiet",
    ]);
    assert_eq!(single_id(&rerun), module_id);
    assert_eq!(gateway.balance(&address).unwrap(), balance, "no second fee");
    assert_eq!(gateway.tx_status(&dry_id).unwrap(), TxStatus::NotFound);

    // --- read back by id, byte for byte.
    for (name, id, bytes) in [
        ("AOS.wasm", &module_id, &module_bytes),
        ("stories260K.bin", &model_id, &model_bytes),
        ("tok512.bin", &tokenizer_id, &tokenizer_bytes),
    ] {
        assert!(
            matches!(gateway.tx_status(id).unwrap(), TxStatus::Confirmed { .. }),
            "{name} ({id}) is mined"
        );
        let tx = gateway
            .get_tx(id)
            .unwrap()
            .expect("the gateway knows the transaction");
        tx.verify().unwrap();
        assert_eq!(tx.owner_address(), address);
        let back = gateway.data(id).unwrap();
        assert_eq!(back.len(), bytes.len(), "length of {name} ({id})");
        assert!(back == *bytes, "{name} ({id}) reads back byte for byte");
    }

    // --- the module by GraphQL tag query.
    let found = gateway
        .find_by_tags(&[("Type", "Module"), ("Module-Format", MODULE_FORMAT)], 10)
        .unwrap();
    assert_eq!(
        found.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        [module_id.as_str()],
        "{found:?}"
    );
    for (n, v) in &dry_tags {
        assert!(
            has_tag(&found[0].tags, n, v),
            "published module lacks {n}={v}"
        );
    }

    // --- the model's tags: its sha256, format and config.
    let sha = sha256_hex(&model_bytes);
    let model_tags = tags_of(&gateway.get_tx(&model_id).unwrap().unwrap());
    for (n, v) in [
        ("Model-SHA256", sha.as_str()),
        ("Type", "Model"),
        ("Model-Format", "llama2c-v0"),
        ("Model-Dim", "64"),
        ("Model-Layers", "5"),
        ("Model-Vocab-Size", "512"),
    ] {
        assert!(
            has_tag(&model_tags, n, v),
            "model tags lack {n}={v}: {model_tags:?}"
        );
    }
    let by_sha = gateway.find_by_tags(&[("Model-SHA256", &sha)], 10).unwrap();
    assert_eq!(by_sha.len(), 1, "{by_sha:?}");
    assert_eq!(by_sha[0].id, model_id);
    let tok_tags = tags_of(&gateway.get_tx(&tokenizer_id).unwrap().unwrap());
    assert!(has_tag(&tok_tags, "Type", "Tokenizer"), "{tok_tags:?}");

    // --- the compute unit loads the model by txid from the gateway: the known-good story.
    let code = format!(
        r#"Llama.load("{model_id}", "{tokenizer_id}") Llama.setPrompt("") return Llama.run(200)"#
    );
    let eval = aos_llama(&["eval", "--module", &s(&aos_wasm), "--gateway", &url, &code]);
    assert_eq!(stdout(&eval), expected_story);

    drop(arlocal);
    eprintln!("whole test: {:.1?}", started.elapsed());
}

/// The path a real compute unit takes (issue 9): SmolLM2 published with `publish --kind model`
/// to arlocal, attested for the process's scheduler, then loaded by txid in AOS.wasm under the
/// real ao-loader through the CU's own WeaveDrive, npm @permaweb/weavedrive 0.0.18, pointed at
/// that gateway (test/node/weavedrive-load.mjs, which also says what arlocal lacks that
/// WeaveDrive needs, and adds it in front). Its chat reply equals the native CLI's.
#[test]
fn smollm2_published_to_arlocal_loads_by_txid_through_npm_weavedrive() {
    let Some(smol) = reference_file("SMOLLM2") else { return };
    let node_dir = repo().join("test/node");
    assert!(
        node_dir.join("node_modules/@permaweb/weavedrive").is_dir(),
        "test/node's npm packages are missing: run test/node/run.sh once (npm ci), as test.sh does"
    );
    assert!(repo().join("AOS.wasm").is_file(), "AOS.wasm is missing: build it with ./build.sh");
    let question = "What is the capital of France?";

    let arlocal = arlocal::ArLocal::start();
    let url = arlocal.url.clone();
    let gateway = Gateway::new(&url);
    let dir = tempdir().unwrap();
    let work = dir.path();
    // A link: publish writes its resume state next to the input, not next to the cache's file.
    let model = work.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::os::unix::fs::symlink(&smol, &model).unwrap();
    let size = std::fs::metadata(&smol).unwrap().len();

    let wallet = work.join("wallet.json");
    let address = single_id(&aos_llama(&["wallet", "new", "-o", &s(&wallet)]));
    gateway.mint(&address, MINTED).unwrap();
    let w = s(&wallet);
    let base = ["--gateway", url.as_str(), "--wallet", w.as_str(), "--quiet"];

    let model_id = single_id(&aos_llama(&[&["publish", &s(&model), "--kind", "model"][..], &base].concat()));
    let tx = gateway.get_tx(&model_id).unwrap().expect("the model's transaction");
    let tags = tags_of(&tx);
    for (n, v) in [
        ("Type", "Model"),
        ("Model-Format", "gguf-v3"),
        ("Model-Architecture", "llama"),
        ("Model-Tensor-Types", "Q4_1=210,Q8_0=1"),
        ("Model-Name", "Smollm2 135M 8k Lc100K Mix1 Ep2"),
        ("Model-Vocab-Size", "49152"),
        ("Model-SHA256", &sha256_hex(&std::fs::read(&smol).unwrap())),
    ] {
        assert!(has_tag(&tags, n, v), "model tags lack {n}={v}: {tags:?}");
    }

    // WeaveDrive admits a txid that the process's Scheduler attested (Type = Attestation,
    // Message = the txid), found by GraphQL up to the message's block height.
    let attestation = work.join("attestation");
    std::fs::write(&attestation, format!("attest {model_id}")).unwrap();
    let message_tag = format!("Message={model_id}");
    aos_llama(
        &[&["publish", &s(&attestation), "--tag", "Type=Attestation", "--tag", &message_tag, "--tag", "Data-Protocol=ao"][..], &base]
            .concat(),
    );
    gateway.mine().unwrap();

    let out = Command::new("node")
        .args(["--experimental-wasm-memory64", "weavedrive-load.mjs", &url, &model_id, &address, question])
        .current_dir(&node_dir)
        .output()
        .expect("run node");
    assert!(out.status.success(), "weavedrive-load.mjs failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(out.stdout.trim_ascii_end().rsplit(|&b| b == b'\n').next().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    eprintln!("weavedrive-load: {report}");
    assert_eq!(report["load"]["data"], format!("llama gpt2/smollm {size}"), "{report}");
    let native = stdout(&aos_llama(&["chat", "--model", &s(&smol), "--user", question, "--steps", "64"]));
    assert_eq!(report["chat"]["data"].as_str().map(|c| format!("{c}\n")), Some(native), "{report}");
    let wd = &report["weavedrive"];
    assert!(wd["bytes"].as_u64().unwrap() >= size, "the whole model came through WeaveDrive's range requests: {wd}");
    assert!(wd["graphql"].as_u64().unwrap() >= 1, "WeaveDrive checked admissibility: {wd}");
}
