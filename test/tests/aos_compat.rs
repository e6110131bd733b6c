//! aos 2.0 compatibility of the real AOS.wasm under the compute unit (the same scenarios as
//! test/node/aos.test.js under ao-loader): a token process, a handler that
//! `Send(...).receive()`s a later reply, a chatroom, the boot handler, `.crypto`, and an
//! LLM answer in a handler. Fails (does not skip) when AOS.wasm is missing.

use std::path::PathBuf;
use std::sync::OnceLock;

use ao_cu::{ComputeUnit, CuOptions, Message, Outcome, Process, SpawnConfig, Tag};
use serde_json::Value;

const PID: &str = "AOScompat000000000000000000000000000000000";
const OWNER: &str = "AOSowner0000000000000000000000000000000000";
const OTHER: &str = "AOSother0000000000000000000000000000000000";
const THIRD: &str = "AOSthird0000000000000000000000000000000000";
const ORACLE: &str = "AOSoracle000000000000000000000000000000000";
const MODEL: &str = "compatModelTxid0000000000000000000000000000";
const TOK: &str = "compatTokTxid000000000000000000000000000000";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cu() -> &'static ComputeUnit {
    static CU: OnceLock<ComputeUnit> = OnceLock::new();
    CU.get_or_init(|| {
        let path = std::env::var_os("AOS_WASM").map(PathBuf::from).unwrap_or_else(|| repo().join("AOS.wasm"));
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("AOS.wasm is required ({}: {e}); build it with ./build.sh", path.display()));
        let dir = std::env::temp_dir().join(format!("ao-cu-compat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let models = repo().join("../shared/models/stories260K");
        for (src, txid) in [("stories260K.bin", MODEL), ("tok512.bin", TOK)] {
            std::fs::copy(models.join(src), dir.join(txid)).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
        ComputeUnit::new(&bytes, CuOptions { data_dir: Some(dir), ..Default::default() }).expect("AOS.wasm loads")
    })
}

fn spawn() -> Process {
    let p = cu().spawn(PID, OWNER).expect("spawn");
    assert!(p.spawn_outcome().unwrap().ok, "{:?}", p.spawn_outcome());
    p
}

fn ok(out: &Outcome) -> &Outcome {
    assert!(out.ok, "not ok: error={:?} output={:?}", out.error, out.output_data);
    out
}

fn send(p: &mut Process, m: Message) -> Outcome {
    let out = p.send(m).expect("send");
    ok(&out);
    out
}

fn eval(p: &mut Process, code: &str) -> String {
    ok(&p.eval(code).expect("eval")).output_data.clone()
}

fn tag<'a>(m: &'a Value, name: &str) -> Option<&'a str> {
    m["Tags"].as_array()?.iter().rev().find(|t| t["name"] == name).and_then(|t| t["value"].as_str())
}

fn lua(name: &str) -> String {
    std::fs::read_to_string(repo().join("lua").join(name)).unwrap()
}

#[test]
fn token_process_driven_by_other_wallets() {
    let mut p = spawn();
    eval(&mut p, &lua("examples/token.lua"));
    let out = send(&mut p, Message::action("Info").from(OTHER));
    assert_eq!(tag(&out.messages[0], "Ticker"), Some("LLAMA"));
    let out = send(
        &mut p,
        Message::action("Transfer").from(OWNER).tag("Recipient", OTHER).tag("Quantity", "2500").tag("X-Memo", "hi"),
    );
    let got: Vec<_> = out
        .messages
        .iter()
        .map(|m| (m["Target"].as_str().unwrap(), tag(m, "Action").unwrap(), tag(m, "X-Memo").unwrap()))
        .collect();
    assert_eq!(got, [(OWNER, "Debit-Notice", "hi"), (OTHER, "Credit-Notice", "hi")]);
    // lower-case tag names work as in aos 2
    let out = send(&mut p, Message::new().tag("action", "Transfer").from(OTHER).tag("recipient", THIRD).tag("quantity", "1000"));
    assert_eq!(out.messages[1]["Target"], THIRD);
    let out = send(&mut p, Message::action("Transfer").from(OTHER).tag("Recipient", THIRD).tag("Quantity", "1501"));
    assert_eq!(tag(&out.messages[0], "Error"), Some("Insufficient Balance!"));
    let mut balance = |who: &str| send(&mut p, Message::action("Balance").from(who)).messages[0]["Data"].as_str().unwrap().to_string();
    assert_eq!([balance(OWNER), balance(OTHER), balance(THIRD)], ["9999999999997500", "1500", "1000"]);
    let out = send(&mut p, Message::action("Mint").from(THIRD).tag("Quantity", "5"));
    assert_eq!(tag(&out.messages[0], "Action"), Some("Mint-Error"));
    send(&mut p, Message::action("Mint").from(OWNER).tag("Quantity", "123456789012345678901234567890"));
    let out = send(&mut p, Message::action("Total-Supply").from(THIRD));
    assert_eq!(out.messages[0]["Data"], "123456789012355678901234567890");
}

#[test]
fn send_receive_resumes_two_messages_later() {
    let mut p = spawn();
    eval(
        &mut p,
        &format!(
            r#"Handlers.add("ask", "Ask", function(msg)
              local answer = Send({{ Target = "{ORACLE}", Action = "Query", Data = msg.Data }}).receive()
              msg.reply({{ Action = "Answer", Data = msg.Data .. " = " .. answer.Data }})
            end)"#
        ),
    );
    let out = send(&mut p, Message::action("Ask").from(OTHER).data("6*7"));
    assert_eq!(out.messages[0]["Target"], ORACLE);
    let reference = tag(&out.messages[0], "Reference").unwrap().to_string();
    let out = send(&mut p, Message::action("Chatter").from(THIRD));
    assert!(out.messages.is_empty());
    let out = send(&mut p, Message::new().from(ORACLE).data("42").tag("X-Reference", reference));
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0]["Target"], OTHER);
    assert_eq!(out.messages[0]["Data"], "6*7 = 42");
}

#[test]
fn chatroom_broadcast() {
    let mut p = spawn();
    eval(&mut p, &lua("examples/chatroom.lua"));
    for who in [OTHER, THIRD, ORACLE] {
        send(&mut p, Message::action("Register").from(who));
    }
    let out = send(&mut p, Message::action("Broadcast").from(THIRD).data("hello room"));
    let targets: Vec<_> = out.messages.iter().map(|m| m["Target"].as_str().unwrap()).collect();
    assert_eq!(targets, [OTHER, THIRD, ORACLE, THIRD]);
    assert_eq!(out.messages[3]["Data"], "Broadcasted to 3 members");
}

#[test]
fn boot_handler_and_later_process_id_messages() {
    let mut p = cu()
        .spawn_with(SpawnConfig {
            id: PID.into(),
            owner: OWNER.into(),
            tags: vec![Tag::new("On-Boot", "Data")],
            data: "Booted = 'yes' print('booting')".into(),
            timestamp: None,
        })
        .unwrap();
    assert_eq!(ok(p.spawn_outcome().unwrap()).output_data, "booting");
    assert_eq!(eval(&mut p, "return Booted .. #Inbox"), "yes0");
    let out = send(&mut p, Message::action("Eval").id(PID).data("1 + 41"));
    assert_eq!(out.output_data, "42");
}

#[test]
fn crypto_and_stdlib_modules() {
    let mut p = spawn();
    assert_eq!(
        eval(&mut p, r#"local c = require(".crypto") return c.digest.sha2_256("abc").asHex()"#),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        eval(&mut p, r#"return require(".crypto").kdf.pbkdf2("password", "salt", 4, 16).asHex()"#),
        "c4c21bf2bbf61541408ec2a49c89b9c6"
    );
    assert_eq!(
        eval(&mut p, r#"local bint = require(".bint")(256) return tostring(bint.ipow(2, 200) + 1)"#),
        "1606938044258990275541962092341162602522202993782792835301377"
    );
}

#[test]
fn handler_answers_with_the_llm() {
    let mut p = spawn();
    eval(
        &mut p,
        &format!(
            r#"Llama.load("/data/{MODEL}", "/data/{TOK}")
            Handlers.add("Ask", Handlers.utils.hasMatchingTag("Action", "Ask"), function(msg)
              msg.reply({{ Action = "Answer", Data = Llama.run(msg.Data, 24) }})
            end)"#
        ),
    );
    let out = send(&mut p, Message::action("Ask").from(OTHER).data("Once upon a time"));
    assert_eq!(out.messages[0]["Target"], OTHER);
    let direct = eval(&mut p, r#"return Llama.run("Once upon a time", 24)"#);
    assert!(direct.len() > 20, "{direct}");
    assert_eq!(out.messages[0]["Data"], direct.as_str());
}
