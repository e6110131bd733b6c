//! `cargo run -p ao-cu --example eval -- AOS.wasm [--data-dir DIR] [--gateway URL] 'LUA' ['LUA'...]`
//!
//! Spawns a process and sends each argument as an Eval from the owner, printing Output.data
//! (errors to stderr, exit code 1 if any message failed).

use ao_cu::{ComputeUnit, CuOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let module = args.next().ok_or_else(|| {
        anyhow::anyhow!("usage: eval MODULE.wasm [--data-dir DIR] [--gateway URL] LUA...")
    })?;
    let mut opts = CuOptions::default();
    let mut code = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data-dir" => opts.data_dir = args.next().map(Into::into),
            "--gateway" => opts.gateway = args.next(),
            _ => code.push(a),
        }
    }
    let t = std::time::Instant::now();
    let cu = ComputeUnit::from_file(&module, opts)?;
    eprintln!("compiled {module} in {:.2} s", t.elapsed().as_secs_f64());
    let mut p = cu.spawn(
        &ao_cu::txid_from("example-process"),
        &ao_cu::txid_from("example-owner"),
    )?;
    let mut failed = false;
    for c in code {
        let out = p.eval(&c)?;
        if !out.output_data.is_empty() {
            println!("{}", out.output_data);
        }
        if let Some(e) = &out.error {
            eprintln!("error: {e}");
            failed = true;
        }
        eprintln!(
            "({:.3} s, memory {} MiB)",
            out.elapsed.as_secs_f64(),
            out.memory_size >> 20
        );
    }
    std::process::exit(if failed { 1 } else { 0 })
}
