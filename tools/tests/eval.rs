//! `aos-llama eval` / `process`: AOS.wasm (built by ./build.sh, which test.sh runs first)
//! in the local compute unit gives the native engine's bytes.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn module() -> String {
    let p = repo().join("AOS.wasm");
    assert!(p.exists(), "AOS.wasm is missing: build it with ./build.sh (test.sh does)");
    p.display().to_string()
}

fn aos_llama(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aos-llama")).args(args).output().unwrap()
}

/// A data dir where the stories260K files are named by txid-shaped names.
fn data_dir() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let models = repo().join("../shared/models/stories260K");
    let (m, t) = ("M".repeat(23) + "odel_stories260K_bin", "T".repeat(24) + "okenizer_tok512_bin");
    assert_eq!((m.len(), t.len()), (43, 43));
    std::fs::copy(models.join("stories260K.bin"), dir.path().join(&m)).unwrap();
    std::fs::copy(models.join("tok512.bin"), dir.path().join(&t)).unwrap();
    (dir, m, t)
}

#[test]
fn eval_generates_the_native_story_bit_for_bit() {
    let (dir, m, t) = data_dir();
    let code = format!(r#"Llama.load("{m}", "{t}") Llama.setPrompt("") return Llama.run(200)"#);
    let wasm = aos_llama(&["eval", "--module", &module(), "--data-dir", &dir.path().display().to_string(), &code]);
    assert!(wasm.status.success(), "{}", String::from_utf8_lossy(&wasm.stderr));
    let native = aos_llama(&[
        "run", "--model", &dir.path().join(&m).display().to_string(), "--tokenizer",
        &dir.path().join(&t).display().to_string(), "--temperature", "0", "--steps", "200",
    ]);
    assert!(native.status.success());
    assert_eq!(String::from_utf8_lossy(&wasm.stdout), String::from_utf8_lossy(&native.stdout));
    assert!(String::from_utf8_lossy(&wasm.stdout).starts_with("Once upon a time, there was a little girl named Lily."));
}

#[test]
fn eval_errors_go_to_stderr_with_exit_1() {
    let o = aos_llama(&["eval", "--module", &module(), r#"error("boom")"#]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("eval:1: boom"));
    let o = aos_llama(&["eval", "--module", &module(), r#"Llama.load("/data/unknown-txid-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")"#]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("model not found"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = aos_llama(&["eval", "--module", &module(), r#"Llama.load("not-a-txid")"#]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected a 43-character Arweave txid"));
    let o = aos_llama(&["eval", "--module", "/nonexistent/AOS.wasm", "return 1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("build it with ./build.sh"));
}

#[test]
fn process_runs_a_script_of_evals_and_messages() {
    let script = "Count = 0\n\
Handlers.add('Ping', Handlers.utils.hasMatchingTag('Action', 'Ping'), function(msg) Count = Count + 1 ao.send({Target = msg.From, Action = 'Pong', Data = tostring(Count)}) end)\n\
:from someone-else-0000000000000000000000000000\n\
:send Action=Ping -- hi\n\
:send Action=Ping\n\
return Count\n\
error('oops')\n\
return Count + 1\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_aos-llama"))
        .args(["process", "--module", &module()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("→ message to someone-else-0000000000000000000000000000"), "{text}");
    assert!(text.contains("Action=Pong"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"2") && lines.contains(&"3"), "counter carried across messages: {text}");
    assert!(text.contains("error: eval:1: oops"), "{text}");
    assert_eq!(o.status.code(), Some(1), "a script with a failed message exits 1");
}

/// Runs `script` (one Eval per line) in one local process with the stories260K files.
fn process_script(script: &str) -> (String, String, Option<i32>) {
    let (dir, _, _) = data_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aos-llama"))
        .args(["process", "--module", &module(), "--data-dir", &dir.path().display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned(), o.status.code())
}

#[test]
fn a_conversation_is_parked_and_resumed_in_a_later_message() {
    let (_, m, t) = data_dir();
    // Message 1 loads with a 128-position context; message 2 generates, saves the state and
    // goes on; message 3 does something else; message 4 restores and must continue exactly
    // as message 2 did after its save.
    let script = format!(
        "Llama.load('{m}', '{t}', {{context = 128}}) return 'context=' .. Llama.info().context_length\n\
         Llama.setPrompt('Once upon a time') Llama.run(10) Saved = Llama.save() return 'after=' .. Llama.run(20)\n\
         Llama.setPrompt('The dog') return 'other=' .. Llama.run(15)\n\
         Llama.restore(Saved) return 'after=' .. Llama.run(20)\n\
         return 'bad=' .. tostring(pcall(Llama.restore, 'not a state'))\n\
         local ok, e = pcall(Llama.setPrompt, string.rep('the dog and the cat ', 40)) return 'long=' .. tostring(ok) .. ' ' .. e\n"
    );
    let (out, err, code) = process_script(&script);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("context=128"), "{out}");
    let afters: Vec<&str> = out.lines().filter(|l| l.starts_with("after=")).collect();
    assert_eq!(afters.len(), 2, "{out}");
    assert!(afters[0].len() > "after=".len() + 20, "{out}");
    assert_eq!(afters[0], afters[1], "the restored conversation continues bit for bit");
    assert!(out.contains("bad=false"), "{out}");
    assert!(out.contains("long=false") && out.contains("prompt past the context"), "{out}");
}

#[test]
fn chat_needs_a_model_with_a_chat_template() {
    let (_, m, t) = data_dir();
    let script = format!(
        "Llama.load('{m}', '{t}') local ok, e = pcall(Llama.chat, {{ {{role = 'user', content = 'hi'}} }}) return 'chat=' .. tostring(ok) .. ' ' .. e\n\
         local ok, e = pcall(Llama.chat, {{ {{role = 'user'}} }}) return 'shape=' .. e\n"
    );
    let (out, err, code) = process_script(&script);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("chat=false") && out.contains("no tokenizer.chat_template"), "{out}");
    assert!(out.contains("message 1 must be a table {role = string, content = string}"), "{out}");
}
