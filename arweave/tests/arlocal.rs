//! End to end against a real local gateway: arlocal (npm), started on 127.0.0.1 on a free port
//! and stopped by PID when the test ends, pass or fail.

mod support;

use std::path::Path;
use std::time::Duration;

use arweave_tx::gateway::{RetryPolicy, TxStatus};
use arweave_tx::upload::{self, state_path_for, UploadOptions};
use arweave_tx::{Error, Gateway, Tag, Wallet};
use serde_json::{json, Value};

/// Non-repeating bytes: arlocal de-duplicates chunks by content, so repeated chunks would
/// read back wrong.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn fresh_wallet(dir: &Path) -> Wallet {
    let req = dir.join("wallet-request.json");
    std::fs::write(&req, json!({ "wallets": 1 }).to_string()).unwrap();
    let out: Value = serde_json::from_str(&support::run_node("vectors.js", &[&req])).unwrap();
    let wallet = Wallet::from_jwk_json(&out["wallets"][0]["jwk"].to_string()).unwrap();
    assert_eq!(
        wallet.address(),
        out["wallets"][0]["address"].as_str().unwrap()
    );
    wallet
}

#[test]
fn publish_read_back_query_and_resume_on_arlocal() {
    let dir = tempfile::tempdir().unwrap();
    let arlocal = support::ArLocal::start();
    let gateway = Gateway::with_retry(
        &arlocal.url,
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        },
    );
    let wallet = fresh_wallet(dir.path());
    let addr = wallet.address();
    gateway.mint(&addr, 1_000_000_000_000_000).unwrap();
    assert_eq!(gateway.balance(&addr).unwrap(), 1_000_000_000_000_000);
    // Tags unique to this run, so the GraphQL query cannot see another run's transactions.
    let run = arweave_tx::b64::encode(data(12, std::process::id() as u64));

    // A small module, posted inline.
    let module_path = dir.path().join("AOS.wasm");
    let module = data(40_000, 1);
    std::fs::write(&module_path, &module).unwrap();
    let module_tags = vec![
        Tag::new("Data-Protocol", "ao"),
        Tag::new("Type", "Module"),
        Tag::new("Content-Type", "application/wasm"),
        Tag::new("Test-Run", run.clone()),
    ];
    let opts = UploadOptions::default();
    let m = upload::upload_file(
        &gateway,
        &wallet,
        &module_path,
        &module_tags,
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(m.header_posted && !m.resumed);
    assert_eq!((m.chunks_total, m.chunks_posted), (0, 0));
    assert_eq!(gateway.posted(), (1, 0));

    // A dry run signs and prices but posts nothing.
    let model_path = dir.path().join("model.bin");
    let model = data(1024 * 1024 + 300_001, 2);
    std::fs::write(&model_path, &model).unwrap();
    let model_tags = vec![
        Tag::new("Content-Type", "application/octet-stream"),
        Tag::new("Test-Run", run.clone()),
    ];
    let dry = upload::prepare_file(&gateway, &wallet, &model_path, &model_tags, &opts).unwrap();
    dry.tx.verify().unwrap();
    assert!(!dry.inline);
    assert_eq!(dry.tx.reward, gateway.price(model.len() as u64).unwrap());
    assert_eq!(gateway.posted(), (1, 0));
    assert!(!state_path_for(&model_path).exists());

    // A model over 1 MiB, in chunks, with progress reports.
    let mut seen = Vec::new();
    let big = upload::upload_file(
        &gateway,
        &wallet,
        &model_path,
        &model_tags,
        &opts,
        &mut |d, t| seen.push((d, t)),
    )
    .unwrap();
    assert_eq!(big.chunks_total, 6);
    assert_eq!(big.chunks_posted, 6);
    assert_eq!(gateway.posted(), (2, 6));
    let total = model.len() as u64;
    assert_eq!(seen.first(), Some(&(0, total)));
    assert_eq!(seen.last(), Some(&(total, total)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));

    // An upload interrupted halfway, then resumed from its state file.
    let resumed_path = dir.path().join("resumed.bin");
    let resumed_data = data(1024 * 1024 + 300_007, 3);
    std::fs::write(&resumed_path, &resumed_data).unwrap();
    let stop = UploadOptions {
        stop_after_chunks: Some(3),
        ..UploadOptions::default()
    };
    match upload::upload_file(
        &gateway,
        &wallet,
        &resumed_path,
        &model_tags,
        &stop,
        &mut |_, _| {},
    ) {
        Err(Error::Interrupted {
            chunks_done: 3,
            chunks_total: 6,
        }) => {}
        other => panic!("expected an interruption after 3 of 6 chunks, got {other:?}"),
    }
    assert!(state_path_for(&resumed_path).exists());
    let posted_before = gateway.posted();
    assert_eq!(posted_before, (3, 9));
    let balance_before = gateway.balance(&addr).unwrap();
    // The state belongs to this file, wallet and tag set: anything else is refused, unposted.
    let other_tags = vec![Tag::new("Content-Type", "text/plain")];
    let refused = upload::upload_file(
        &gateway,
        &wallet,
        &resumed_path,
        &other_tags,
        &opts,
        &mut |_, _| {},
    );
    assert!(matches!(refused, Err(Error::State { .. })), "{refused:?}");
    let other_wallet = fresh_wallet(dir.path());
    let refused = upload::upload_file(
        &gateway,
        &other_wallet,
        &resumed_path,
        &model_tags,
        &opts,
        &mut |_, _| {},
    );
    assert!(matches!(refused, Err(Error::State { .. })), "{refused:?}");
    assert_eq!(gateway.posted(), posted_before);
    let mut first_progress = None;
    let r = upload::upload_file(
        &gateway,
        &wallet,
        &resumed_path,
        &model_tags,
        &opts,
        &mut |d, _| {
            first_progress.get_or_insert(d);
        },
    )
    .unwrap();
    assert!(r.resumed);
    assert!(!r.header_posted, "the header must not be posted again");
    assert_eq!(r.chunks_posted, 3);
    assert_eq!(gateway.posted(), (3, 12), "no second POST /tx");
    assert_eq!(
        gateway.balance(&addr).unwrap(),
        balance_before,
        "no second fee"
    );
    assert!(
        first_progress.unwrap() > 0,
        "progress starts where the first run stopped"
    );
    // Once complete, running again posts nothing.
    let again = upload::upload_file(
        &gateway,
        &wallet,
        &resumed_path,
        &model_tags,
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(
        (again.id.as_str(), again.header_posted, again.chunks_posted),
        (r.id.as_str(), false, 0)
    );
    assert_eq!(gateway.posted(), (3, 12));
    // The fee was paid three times, once per transaction.
    let fees = m.reward + big.reward + r.reward;
    assert_eq!(
        gateway.balance(&addr).unwrap(),
        1_000_000_000_000_000 - fees
    );

    gateway.mine().unwrap();

    for (id, expected) in [(&m.id, &module), (&big.id, &model), (&r.id, &resumed_data)] {
        assert!(
            matches!(gateway.tx_status(id).unwrap(), TxStatus::Confirmed { .. }),
            "{id} is mined"
        );
        let tx = gateway
            .get_tx(id)
            .unwrap()
            .expect("the gateway knows the transaction");
        tx.verify().unwrap();
        assert_eq!(tx.owner_address(), addr);
        let back = gateway.data(id).unwrap();
        assert_eq!(back.len(), expected.len(), "length of {id}");
        assert!(back == *expected, "data of {id} reads back byte for byte");
    }

    let found = gateway
        .find_by_tags(&[("Type", "Module"), ("Test-Run", &run)], 10)
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, m.id);
    assert!(found[0]
        .tags
        .contains(&("Content-Type".into(), "application/wasm".into())));

    // The gateway itself rejects a transaction whose tag was changed after signing.
    let mut tampered = upload::prepare_file(&gateway, &wallet, &module_path, &module_tags, &opts)
        .unwrap()
        .tx;
    tampered.data = module.clone();
    tampered.tags[1].value = b"Process".to_vec();
    let err = gateway.post_tx(&tampered).unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(gateway.tx_status(&tampered.id_b64()).unwrap() == TxStatus::NotFound);
    drop(arlocal);
}

#[test]
fn unreachable_gateway_fails_before_any_state_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = fresh_wallet(dir.path());
    let path = dir.path().join("f.bin");
    std::fs::write(&path, data(300_000, 4)).unwrap();
    // Nothing listens on port 9 (discard) of loopback: any request fails fast.
    let gateway = Gateway::with_retry(
        "http://127.0.0.1:9",
        RetryPolicy {
            attempts: 1,
            ..Default::default()
        },
    );
    let tags = vec![Tag::new("A", "1")];
    let opts = UploadOptions {
        reward: Some(1),
        ..Default::default()
    };
    // Without an anchor nothing can be prepared.
    assert!(matches!(
        upload::upload_file(&gateway, &wallet, &path, &tags, &opts, &mut |_, _| {}),
        Err(Error::Gateway { .. })
    ));
    assert!(!state_path_for(&path).exists());
}
