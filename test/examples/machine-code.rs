//! `cargo run --release -p ao-cu --example machine-code -- AOS.wasm OUT.elf`
//!
//! Compiles a module exactly as the compute unit does (its wasmtime configuration:
//! memory64, Cranelift's heap Spectre mitigation off, …) and writes the machine code, an
//! ELF file, for `objdump -d --no-show-raw-insn OUT.elf`. A module with a name section (a
//! `wasm-opt -g` build of the same link, README "Profiling AOS.wasm") gives its symbols
//! as `wasm[0]::function[N]::NAME`; `objdump -t OUT.elf | grep NAME` gives a function's
//! address and size for `--start-address` / `--stop-address`. What the kernels become
//! under wasmtime: bounds checks, spills, which loads come first.

use ao_cu::{ComputeUnit, CuOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, out] = args.as_slice() else {
        anyhow::bail!("usage: machine-code MODULE.wasm OUT.elf");
    };
    let cu = ComputeUnit::from_file(module, CuOptions::default())?;
    let code = cu.module().serialize()?;
    std::fs::write(out, &code)?;
    eprintln!("wrote {out} ({} bytes): objdump -d --no-show-raw-insn {out}", code.len());
    Ok(())
}
