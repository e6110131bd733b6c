//! The 8B-shaped measurement of README "Large models" (issue 9): a random-weight Llama-3-8B-shaped
//! Q4_K_M GGUF (~4.9 GB, `test/reference/make-models.py --big llama3-8b DIR`) in the real
//! AOS.wasm under the compute unit with a 16 GiB Memory-Limit: load time, linear memory after
//! the load and at its peak, tokens/s; its greedy tokens must equal the native CLI's.
//! Not in CI (minutes, ~11 GB of RAM: the CU keeps a snapshot of the memory to roll back a
//! failed message); `test/reference/large-8b.sh` runs it:
//!
//!   AOS_8B_GGUF=path AOS_LLAMA_BIN=path cargo test -p ao-cu --test large_8b -- --ignored --nocapture

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use ao_cu::{ComputeUnit, CuOptions, Process};

const MODEL: &str = "llama3x8bllama3x8bllama3x8bllama3x8bllama3x";
const PROMPT: &str = "The history of the Roman Empire";
const CONTEXT: usize = 2048;
const N: usize = 16;

fn eval(p: &mut Process, code: &str) -> String {
    let out = p.eval(code).expect("eval");
    assert!(out.ok, "error={:?} output={:?}", out.error, out.output_data);
    out.output_data
}

#[test]
#[ignore = "README command (test/reference/large-8b.sh): a 4.9 GB model, ~11 GB of RAM"]
fn llama3_8b_shaped_q4_k_m_in_aos_wasm_within_16_gib() {
    let model = PathBuf::from(std::env::var_os("AOS_8B_GGUF").expect("AOS_8B_GGUF: the 8B-shaped GGUF"));
    let cli = PathBuf::from(std::env::var_os("AOS_LLAMA_BIN").expect("AOS_LLAMA_BIN: the aos-llama CLI"));
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let wasm = std::fs::read(repo.join("AOS.wasm")).expect("AOS.wasm (./build.sh)");
    let size = std::fs::metadata(&model).unwrap().len();
    let dir = std::env::temp_dir().join(format!("ao-cu-8b-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(MODEL);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&model, &link).unwrap();
    let limit = 16u64 << 30;
    let cu = ComputeUnit::new(&wasm, CuOptions { data_dir: Some(dir.clone()), memory_limit: limit, ..Default::default() })
        .expect("AOS.wasm loads");
    let mut p = cu.spawn(&ao_cu::txid_from("aos-llama 8B"), "aos-llama-8b-owner-00000000000000000000000").expect("spawn");
    let before = p.memory_size();

    let t = Instant::now();
    let shape = eval(
        &mut p,
        &format!(
            r#"local m = Llama.load("/data/{MODEL}", {{ context = {CONTEXT} }}).model
            return m.dim .. " " .. m.n_layers .. " " .. m.n_kv_heads .. " " .. m.head_dim"#
        ),
    );
    let load_s = t.elapsed().as_secs_f64();
    let after_load = p.memory_size();
    let v: Vec<usize> = shape.split(' ').map(|x| x.parse().unwrap()).collect();
    assert_eq!(&v[..2], &[4096, 32]);
    let kv = 2 * v[1] * CONTEXT * v[2] * v[3] * 4;

    // Tokens/s: run(N) minus run(0) on the same prompt (cancels the per-message costs).
    let timed = |p: &mut Process, n: usize| {
        let t = Instant::now();
        let out = eval(p, &format!("Llama.setPrompt({PROMPT:?}) local n = Llama.info().position return n .. '\\0' .. Llama.run({n})"));
        (t.elapsed().as_secs_f64(), out)
    };
    let (t0, _) = timed(&mut p, 0);
    let (t1, out) = timed(&mut p, N);
    let peak = p.memory_size();
    let (n, text) = out.split_once('\0').unwrap();
    let tps = N as f64 / (t1 - t0);

    let steps = (n.parse::<usize>().unwrap() - 1 + N).to_string();
    let t = Instant::now();
    let native = Command::new(&cli)
        .args(["run", "--model", model.to_str().unwrap(), "--context", &CONTEXT.to_string(), "--prompt", PROMPT])
        .args(["--temperature", "0", "--steps", &steps])
        .output()
        .expect("aos-llama run");
    let native_s = t.elapsed().as_secs_f64();
    assert!(native.status.success(), "{}", String::from_utf8_lossy(&native.stderr));
    assert_eq!(String::from_utf8_lossy(&native.stdout), format!("{PROMPT}{text}\n"), "wasm and native tokens differ");
    let native_report = String::from_utf8_lossy(&native.stderr).lines().last().unwrap_or("").to_string();

    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    println!(
        "8B-shaped Q4_K_M in AOS.wasm (wasmtime CU, Memory-Limit 16 GiB): file {:.2} GiB; load {load_s:.1} s \
         ({:.0} MB/s); linear memory {:.2} GiB before, {:.2} GiB after the load (file + KV cache {:.2} GiB at \
         context {CONTEXT}), peak {:.2} GiB; {tps:.2} tokens/s (run({N}) − run(0)); native CLI: {native_report} \
         ({native_s:.1} s for the whole command); the same {N} tokens: {text:?}",
        gib(size),
        size as f64 / load_s / 1e6,
        gib(before),
        gib(after_load),
        gib(kv as u64),
        gib(peak),
    );
    assert!(peak <= limit);
    // The heap grows past each request by up to 96 MiB (the glue's resize_heap rule), and the
    // runtime's buffers (logits over 128,256 tokens, Lua) come on top: 256 MiB of slack.
    assert!(
        after_load - before <= size + kv as u64 + (256 << 20),
        "memory grew by {} for a {size}-byte file and a {kv}-byte KV cache: weights widened or copied?",
        after_load - before
    );
    let _ = std::fs::remove_dir_all(&dir);
}
