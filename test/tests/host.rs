//! The compute unit against hand-written memory64 modules that import what AOS.wasm imports.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use ao_cu::{glue_imports, CuOptions, Message, Outcome};
use common::*;

fn counter_module() -> String {
    let ok = format!(
        r#"{OK_PREFIX}N"}},"Messages":[{{"Target":"x","Tags":[{{"name":"Action","value":"Reply"}}]}}],"Spawns":[],"Assignments":[]}}}}"#
    );
    let digit = RESP + OK_PREFIX.len() as u64;
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i64 i64 i64) (result i32)))
  (import "env" "emscripten_resize_heap" (func $resize (param i64) (result i32)))
  {prelude}
  (data (i64.const {RESP}) {ok})
  (data (i64.const 85000) {fail})
  (data (i64.const 90100) "hello\n")
  (func (export "handle") (param $msg i64) (param $env i64) (result i64)
    (local $n i64)
    (local.set $n (i64.add (i64.load (i64.const {COUNTER})) (i64.const 1)))
    (i64.store (i64.const {COUNTER}) (local.get $n))
    (i32.store8 (i64.const {digit})
      (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $n) (i64.const 10)))))
    (i64.store (i64.const 90000) (i64.const 90100))
    (i64.store (i64.const 90008) (i64.const 6))
    (drop (call $fd_write (i32.const 1) (i64.const 90000) (i64.const 1) (i64.const 90200)))
    (if (call $contains (local.get $msg) (i32.const 43)) (then
      (i64.store (i64.const 90300) (i64.extend_i32_u (call $resize
        (i64.add (i64.mul (memory.size) (i64.const 65536)) (i64.const 1048576)))))))
    (if (call $contains (local.get $msg) (i32.const 33)) (then (return (i64.const 85000))))
    (if (call $contains (local.get $msg) (i32.const 126)) (then (loop $spin (br $spin))))
    (if (call $contains (local.get $msg) (i32.const 37)) (then unreachable))
    (if (call $contains (local.get $msg) (i32.const 35)) (then
      (i32.store (i64.const {STACK_END}) (i32.const 0))))
    (i64.const {RESP}))
)"#,
        prelude = prelude(),
        ok = wat_str(&format!("{ok}\0")),
        fail = wat_str("{\"ok\":false,\"response\":{\"Error\":\"bang\"}}\0"),
    )
}

fn counter(p: &ao_cu::Process) -> u64 {
    let m = p.memory();
    u64::from_le_bytes(
        m[COUNTER as usize..COUNTER as usize + 8]
            .try_into()
            .unwrap(),
    )
}

#[test]
fn memory_is_carried_between_messages() {
    let cu = compile(&counter_module(), CuOptions::default()).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    // The spawn message was the first.
    assert_eq!(p.spawn_outcome().unwrap().output_data, "1");
    assert_eq!(p.log()[0].message["Id"], PID);
    assert_eq!(p.log()[0].message["Owner"], OWNER);
    let tags = Outcome::message_tags(&p.log()[0].message);
    assert!(
        tags.contains(&("Type".into(), "Process".into())),
        "{tags:?}"
    );
    assert!(tags.iter().any(|(n, _)| n == "Module"), "{tags:?}");
    for i in 2..=4 {
        let out = p.send(Message::action("Ping")).unwrap();
        assert!(out.ok);
        assert_eq!(out.output_data, i.to_string());
        assert_eq!(out.stdout, "hello\n");
        assert_eq!(out.messages.len(), 1);
        assert_eq!(
            Outcome::message_tags(&out.messages[0]),
            vec![("Action".to_string(), "Reply".to_string())]
        );
    }
    assert_eq!(counter(&p), 4);
    assert_eq!(p.log().len(), 4);
    // The glue's start-up: `emsc` at 0 and the stack cookie at emscripten_stack_get_end().
    let m = p.memory();
    assert_eq!(&m[0..4], b"emsc");
    assert_eq!(
        u32::from_le_bytes(m[1024..1028].try_into().unwrap()),
        0x02135467
    );
    assert_eq!(
        u32::from_le_bytes(m[1028..1032].try_into().unwrap()),
        0x89BACDFE
    );
}

#[test]
fn ok_false_restores_the_snapshot() {
    let cu = compile(&counter_module(), CuOptions::default()).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    p.send(Message::action("Ping")).unwrap();
    assert_eq!(counter(&p), 2);
    let before = p.memory().to_vec();
    let out = p.send(Message::action("Fail").data("!")).unwrap();
    assert!(!out.ok);
    assert_eq!(out.error.as_deref(), Some("bang"));
    assert_eq!(
        out.stdout, "hello\n",
        "output of the failed message is still reported"
    );
    assert_eq!(
        p.memory(),
        &before[..],
        "memory is exactly as before the failed message"
    );
    let out = p.send(Message::action("Ping")).unwrap();
    assert_eq!(out.output_data, "3");
    // A failed message that also grew memory: restored, the new tail zeroed.
    let size0 = p.memory_size();
    let before = p.memory().to_vec();
    let out = p.send(Message::action("Fail").data("!+")).unwrap();
    assert!(!out.ok);
    assert!(p.memory_size() > size0);
    assert_eq!(&p.memory()[..before.len()], &before[..]);
    assert!(p.memory()[before.len()..].iter().all(|&b| b == 0));
    assert_eq!(p.send(Message::action("Ping")).unwrap().output_data, "4");
}

#[test]
fn traps_restore_the_snapshot_on_a_fresh_instance() {
    let cu = compile(&counter_module(), CuOptions::default()).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    let before = p.memory().to_vec();
    let err = p
        .send(Message::action("Trap").data("%"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(p.memory(), &before[..]);
    assert!(p.log().last().unwrap().result.is_err());
    // A smashed stack cookie is the glue's abort.
    let err = p
        .send(Message::action("Smash").data("#"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Stack cookie has been overwritten"), "{err}");
    assert_eq!(p.memory(), &before[..]);
    assert_eq!(p.send(Message::action("Ping")).unwrap().output_data, "2");
}

#[test]
fn resize_heap_grows_up_to_the_limit() {
    let opts = CuOptions {
        memory_limit: 2 << 20,
        ..Default::default()
    };
    let cu = compile(&counter_module(), opts).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    assert_eq!(p.memory_size(), 4 * 65536);
    p.send(Message::action("Grow").data("+")).unwrap();
    let grown = p.memory_size();
    assert!(grown >= 4 * 65536 + (1 << 20), "{grown}");
    assert_eq!(
        u64::from_le_bytes(p.memory()[90300..90308].try_into().unwrap()),
        1
    );
    let out = p.send(Message::action("Grow").data("+")).unwrap();
    assert_eq!(
        u64::from_le_bytes(p.memory()[90300..90308].try_into().unwrap()),
        0,
        "beyond the limit"
    );
    assert!(
        out.stderr.contains("Cannot enlarge memory"),
        "{}",
        out.stderr
    );
    assert_eq!(p.memory_size(), grown);
}

#[test]
fn a_message_larger_than_the_stack_is_a_clear_error() {
    let cu = compile(&counter_module(), CuOptions::default()).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    let err = p
        .send(Message::action("Big").data("x".repeat(70_000)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not fit on the module's stack"), "{err}");
    assert_eq!(p.send(Message::action("Ping")).unwrap().output_data, "2");
}

fn longjmp_module() -> String {
    let d = RESP + OK_PREFIX.len() as u64;
    let ok = format!(r#"{OK_PREFIX}.....","print":true}}}}}}"#);
    format!(
        r#"(module
  (import "env" "_emscripten_throw_longjmp" (func $throw))
  (import "env" "invoke_vjj" (func $invoke (param i64 i64 i64)))
  {prelude}
  (elem (i32.const 0) $thrower $normal $trapper)
  (data (i64.const {RESP}) {ok})
  (func $thrower (param i64 i64)
    (i32.store8 (i64.const {MARKS}) (i32.const 84))
    (global.set $sp (i64.sub (global.get $sp) (i64.const 4096)))
    (call $throw)
    (i32.store8 (i64.const {MARKS}) (i32.const 88)))
  (func $normal (param $a i64) (param $b i64)
    (i32.store8 (i64.const {m1}) (i32.wrap_i64 (i64.add (local.get $a) (local.get $b)))))
  (func $trapper (param i64 i64) unreachable)
  (func (export "handle") (param $msg i64) (param $env i64) (result i64)
    (local $sp0 i64)
    (global.set $threw (i64.const 0))
    (local.set $sp0 (global.get $sp))
    (call $invoke (i64.const 0) (i64.const 1) (i64.const 2))
    (i32.store8 (i64.const {d}) (i32.add (i32.const 48) (i32.wrap_i64 (global.get $threw))))
    (i32.store8 (i64.const {d1})
      (select (i32.const 83) (i32.const 70) (i64.eq (global.get $sp) (local.get $sp0))))
    (global.set $threw (i64.const 0))
    (call $invoke (i64.const 1) (i64.const 70) (i64.const 8))
    (i32.store8 (i64.const {d2}) (i32.load8_u (i64.const {MARKS})))
    (i32.store8 (i64.const {d3}) (i32.load8_u (i64.const {m1})))
    (i32.store8 (i64.const {d4}) (i32.add (i32.const 48) (i32.wrap_i64 (global.get $threw))))
    (if (call $contains (local.get $msg) (i32.const 33)) (then
      (call $invoke (i64.const 2) (i64.const 0) (i64.const 0))))
    (if (call $contains (local.get $msg) (i32.const 64)) (then (call $throw)))
    (i64.const {RESP}))
)"#,
        prelude = prelude(),
        ok = wat_str(&format!("{ok}\0")),
        m1 = MARKS + 1,
        d1 = d + 1,
        d2 = d + 2,
        d3 = d + 3,
        d4 = d + 4,
    )
}

#[test]
fn invoke_vjj_catches_longjmp_and_calls_set_threw() {
    let cu = compile(&longjmp_module(), CuOptions::default()).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    // threw=1 after the longjmp, stack pointer restored, the thrower ran up to the throw only,
    // the normal table function ran (70+8 = 'N'), threw stays 0 after a normal call.
    assert_eq!(p.spawn_outcome().unwrap().output_data, "1STN0");
    for _ in 0..100 {
        assert_eq!(
            p.send(Message::action("Again")).unwrap().output_data,
            "1STN0"
        );
    }
    // Other traps inside invoke_vjj propagate (and the process survives).
    let err = p
        .send(Message::action("Trap").data("!"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unreachable"), "{err}");
    // A longjmp outside invoke_vjj is an error, not a hang or a crash.
    let err = p
        .send(Message::action("Uncaught").data("@"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("longjmp"), "{err}");
    assert_eq!(
        p.send(Message::action("Again")).unwrap().output_data,
        "1STN0"
    );
}

const TXID: &str = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_ABCDE";
const MISSING: &str = "MissingMissingMissingMissingMissingMissing0";
const CONTENT: &str = "hello weave drive";

fn weavedrive_module() -> String {
    let p = RESP + OK_PREFIX.len() as u64;
    format!(
        r#"(module
  (import "env" "__asyncjs__weavedrive_open" (func $open (param i64 i64) (result i32)))
  (import "env" "__asyncjs__weavedrive_read" (func $read (param i32 i64 i64) (result i32)))
  (import "env" "__asyncjs__weavedrive_close" (func $close (param i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $seek (param i32 i64 i32 i64) (result i32)))
  {prelude}
  (data (i64.const 72000) {path})
  (data (i64.const 72200) {missing})
  (data (i64.const {RESP}) {prefix})
  (data (i64.const 81000) {suffix})
  (data (i64.const 85000) {fail})
  (func (export "handle") (param $msg i64) (param $env i64) (result i64)
    (local $fd i32) (local $size i64) (local $n i32)
    (local.set $fd (call $open
      (select (i64.const 72200) (i64.const 72000) (call $contains (local.get $msg) (i32.const 33)))
      (i64.const 0)))
    (if (i32.le_s (local.get $fd) (i32.const 0)) (then (return (i64.const 85000))))
    (drop (call $seek (local.get $fd) (i64.const 0) (i32.const 2) (i64.const 72500)))
    (local.set $size (i64.load (i64.const 72500)))
    (drop (call $seek (local.get $fd) (i64.const 0) (i32.const 0) (i64.const 72500)))
    (local.set $n (call $read (local.get $fd) (i64.const {p}) (i64.const 3)))
    (local.set $n (i32.add (local.get $n)
      (call $read (local.get $fd) (i64.const {p3}) (i64.sub (local.get $size) (i64.const 3)))))
    ;; a read at the end gives 0
    (local.set $n (i32.add (local.get $n) (call $read (local.get $fd) (i64.const 95000) (i64.const 10))))
    (call $close (local.get $fd))
    (memory.copy (i64.add (i64.const {p}) (i64.extend_i32_u (local.get $n))) (i64.const 81000) (i64.const 5))
    (i64.const {RESP}))
)"#,
        prelude = prelude(),
        path = wat_str(&format!("/data/{TXID}\0")),
        missing = wat_str(&format!("/data/{MISSING}\0")),
        prefix = wat_str(OK_PREFIX),
        suffix = wat_str("\"}}}\0"),
        fail = wat_str("{\"ok\":false,\"response\":{\"Error\":\"not found\"}}\0"),
        p3 = p + 3,
    )
}

#[test]
fn weavedrive_reads_a_data_dir_file() {
    let dir = std::env::temp_dir().join(format!("ao-cu-wd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(TXID), CONTENT).unwrap();
    let opts = CuOptions {
        data_dir: Some(dir.clone()),
        ..Default::default()
    };
    let cu = compile(&weavedrive_module(), opts).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    assert_eq!(p.spawn_outcome().unwrap().output_data, CONTENT);
    assert_eq!(
        p.send(Message::action("Read")).unwrap().output_data,
        CONTENT
    );
    // Missing: open returns -1 (the module answers ok:false), the process goes on.
    let out = p.send(Message::action("Read").data("!")).unwrap();
    assert!(!out.ok);
    assert_eq!(out.error.as_deref(), Some("not found"));
    assert!(
        out.stderr.contains("HALT: FILE NOT FOUND"),
        "{}",
        out.stderr
    );
    assert_eq!(
        p.send(Message::action("Read")).unwrap().output_data,
        CONTENT
    );
    // strict: the glue's behaviour, a halt of the whole message.
    let opts = CuOptions {
        data_dir: Some(dir.clone()),
        strict_weavedrive: true,
        ..Default::default()
    };
    let cu = compile(&weavedrive_module(), opts).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    let err = p
        .send(Message::action("Read").data("!"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("HALT: FILE NOT FOUND"), "{err}");
    assert_eq!(
        p.send(Message::action("Read")).unwrap().output_data,
        CONTENT
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A minimal HTTP/1.1 gateway serving one transaction, honouring HEAD and `Range`.
fn tiny_gateway(body: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        let mut seen = Vec::new();
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut range = None;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let (a, b) = v.trim().split_once('-').unwrap();
                    range = Some((a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()));
                }
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            );
            seen.push(format!("{method} {path} {range:?}"));
            if path == "/quit" {
                break;
            }
            let resp = if path != format!("/{TXID}") {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            } else if let Some((a, b)) = range {
                let b = b.min(body.len() - 1);
                let mut r = format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{}\r\nConnection: close\r\n\r\n",
                    b + 1 - a,
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(&body[a..=b]);
                r
            } else {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                if method != "HEAD" {
                    r.extend_from_slice(body);
                }
                r
            };
            stream.write_all(&resp).unwrap();
            let _ = stream.flush();
            let mut sink = [0u8; 1];
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(10)));
            let _ = stream.read(&mut sink);
        }
        seen
    });
    (url, h)
}

#[test]
fn weavedrive_reads_from_a_gateway_with_range_requests() {
    let (url, server) = tiny_gateway(CONTENT.as_bytes());
    let opts = CuOptions {
        gateway: Some(format!("{url}/")),
        ..Default::default()
    };
    let cu = compile(&weavedrive_module(), opts).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    assert_eq!(p.spawn_outcome().unwrap().output_data, CONTENT);
    let out = p.send(Message::action("Read").data("!")).unwrap();
    assert_eq!(out.error.as_deref(), Some("not found"));
    let _ = ureq::get(&format!("{url}/quit")).call();
    let seen = server.join().unwrap();
    assert!(
        seen.iter().any(|s| s.starts_with(&format!("HEAD /{TXID}"))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.starts_with(&format!("GET /{TXID} Some((0, "))),
        "{seen:?}"
    );
}

#[test]
fn an_import_outside_the_glue_is_rejected() {
    let wat_src = format!(
        r#"(module
  (import "env" "foo" (func (param i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (import "env" "fd_write" (func (param i32 i64 i64 i64) (result i32)))
  {}
  (func (export "handle") (param i64 i64) (result i64) (i64.const 0)))"#,
        prelude()
    );
    let err = compile(&wat_src, CuOptions::default())
        .err()
        .expect("rejected")
        .to_string();
    assert!(err.contains("outside the AO loader's"), "{err}");
    assert!(err.contains("env.foo"), "{err}");
    assert!(err.contains("wasi_snapshot_preview1.proc_exit"), "{err}");
    assert!(!err.contains("fd_write"), "{err}");
    // Wrong arity of a glue import is rejected too.
    let wat_src = format!(
        r#"(module (import "env" "fd_write" (func (param i32 i64) (result i32))) {}
  (func (export "handle") (param i64 i64) (result i64) (i64.const 0)))"#,
        prelude()
    );
    let err = compile(&wat_src, CuOptions::default())
        .err()
        .expect("rejected")
        .to_string();
    assert!(err.contains("fd_write: declared (ij)"), "{err}");
    // Missing glue exports.
    let err = compile(
        r#"(module (memory (export "memory") i64 1))"#,
        CuOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("handle") && err.contains("emscripten_stack_init"),
        "{err}"
    );
}

#[test]
fn every_glue_import_links_and_the_list_is_complete() {
    let names: Vec<_> = glue_imports().map(|(n, _, _)| n).collect();
    assert_eq!(names.len(), 53, "{names:?}");
    let mut imports = String::new();
    for (i, (name, params, result)) in glue_imports().enumerate() {
        let ps: Vec<&str> = params
            .chars()
            .map(|c| if c == 'i' { "i32" } else { "i64" })
            .collect();
        let r = match result {
            "i" => "(result i32)",
            "j" => "(result i64)",
            "d" => "(result f64)",
            _ => "",
        };
        let module = if name.starts_with("fd_") || name.starts_with("environ") {
            "wasi_snapshot_preview1"
        } else {
            "env"
        };
        imports += &format!(
            "  (import \"{module}\" \"{name}\" (func $i{i} (param {}) {r}))\n",
            ps.join(" ")
        );
    }
    // Call a few with meaningful results through a handle that stores them.
    let wat_src = format!(
        r#"(module
{imports}
  {prelude}
  (data (i64.const 96000) "%Y-%m-%d %H:%M:%S\00")
  (data (i64.const {RESP}) {ok})
  (func (export "handle") (param $msg i64) (param $env i64) (result i64)
    (f64.store (i64.const 90000) (call $date_now))
    (f64.store (i64.const 90008) (call $date_now))
    (i64.store (i64.const 90016) (call $heap_max))
    (i32.store (i64.const 90024) (call $getcwd (i64.const 90100) (i64.const 16)))
    (i32.store (i64.const 90028) (call $openat (i32.const -100) (i64.const 96000) (i32.const 0) (i64.const 0)))
    (call $gmtime (i64.const 1700000000) (i64.const 91000))
    (i64.store (i64.const 90032) (call $strftime (i64.const 92000) (i64.const 64) (i64.const 96000) (i64.const 91000)))
    (i64.store (i64.const 90040) (call $mktime (i64.const 91000)))
    (i32.store (i64.const 90048) (call $system (i64.const 0)))
    (i64.const {RESP}))
)"#,
        prelude = prelude(),
        ok = wat_str(&format!("{OK_PREFIX}ok\"}}}}}}\0")),
    );
    let idx = |n: &str| names.iter().position(|x| *x == n).unwrap();
    let wat_src = wat_src
        .replace("$date_now", &format!("$i{}", idx("emscripten_date_now")))
        .replace(
            "$heap_max",
            &format!("$i{}", idx("emscripten_get_heap_max")),
        )
        .replace("$getcwd", &format!("$i{}", idx("__syscall_getcwd")))
        .replace("$openat", &format!("$i{}", idx("__syscall_openat")))
        .replace("$gmtime", &format!("$i{}", idx("_gmtime_js")))
        .replace("$strftime", &format!("$i{}", idx("strftime")))
        .replace("$mktime", &format!("$i{}", idx("_mktime_js")))
        .replace("$system", &format!("$i{}", idx("_emscripten_system")));
    let cu = compile(&wat_src, CuOptions::default()).unwrap();
    assert!(cu.warnings().is_empty(), "{:?}", cu.warnings());
    assert_eq!(cu.imports().len(), 53);
    let p = cu.spawn(PID, OWNER).unwrap();
    assert_eq!(p.spawn_outcome().unwrap().output_data, "ok");
    let m = p.memory();
    let f64_at = |a: usize| f64::from_le_bytes(m[a..a + 8].try_into().unwrap());
    let i64_at = |a: usize| i64::from_le_bytes(m[a..a + 8].try_into().unwrap());
    let i32_at = |a: usize| i32::from_le_bytes(m[a..a + 4].try_into().unwrap());
    assert_eq!(
        (f64_at(90000), f64_at(90008)),
        (10000.0, 10001.0),
        "the glue's deterministic Date.now"
    );
    assert_eq!(i64_at(90016), 4 << 30);
    assert_eq!(i32_at(90024), 2);
    assert_eq!(&m[90100..90102], b"/\0");
    assert_eq!(i32_at(90028), -44);
    assert_eq!(i64_at(90032), 19);
    assert_eq!(&m[92000..92020], b"2023-11-14 22:13:20\0");
    assert_eq!(i64_at(90040), 1700000000);
    assert_eq!(i32_at(90048), 0);
}

#[test]
fn a_timeout_stops_a_runaway_message_and_keeps_the_state() {
    let opts = CuOptions {
        timeout: Some(std::time::Duration::from_millis(300)),
        ..Default::default()
    };
    let cu = compile(&counter_module(), opts).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    let t = std::time::Instant::now();
    let err = p
        .send(Message::action("Spin").data("~"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("longer than the timeout"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(counter(&p), 1);
    assert_eq!(p.send(Message::action("Ping")).unwrap().output_data, "2");
}

#[test]
fn clock_modes() {
    let wat_src = format!(
        r#"(module
  (import "env" "emscripten_date_now" (func $now (result f64)))
  {prelude}
  (data (i64.const {RESP}) {ok})
  (func (export "handle") (param $msg i64) (param $env i64) (result i64)
    (f64.store (i64.const 90000) (call $now))
    (f64.store (i64.const 90008) (call $now))
    (i64.const {RESP})))"#,
        prelude = prelude(),
        ok = wat_str(&format!("{OK_PREFIX}ok\"}}}}}}\0")),
    );
    let read = |p: &ao_cu::Process| {
        let m = p.memory();
        (
            f64::from_le_bytes(m[90000..90008].try_into().unwrap()),
            f64::from_le_bytes(m[90008..90016].try_into().unwrap()),
        )
    };
    // The glue: one counter from 10000 for the life of the process (the spawn used 2 ticks).
    let cu = compile(&wat_src, CuOptions::default()).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    p.send(Message::action("T").timestamp(1_700_000_000_000))
        .unwrap();
    assert_eq!(read(&p), (10002.0, 10003.0));
    // Timestamp mode: the message's Timestamp, +1 per call.
    let opts = CuOptions {
        clock: ao_cu::Clock::Timestamp,
        ..Default::default()
    };
    let cu = compile(&wat_src, opts).unwrap();
    let mut p = cu.spawn(PID, OWNER).unwrap();
    p.send(Message::action("T").timestamp(1_700_000_000_000))
        .unwrap();
    assert_eq!(read(&p), (1_700_000_000_000.0, 1_700_000_000_001.0));
}
