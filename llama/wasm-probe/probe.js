const fs = require('node:fs');
const mod = new WebAssembly.Module(fs.readFileSync(process.argv[2]));
const { exports: e } = new WebAssembly.Instance(mod, {});
console.log('backends', e.backends());
const t0 = Date.now();
const bad = e.run();
console.log('mismatches', bad, 'first', e.first_failure(), 'ms', Date.now() - t0);
const badCols = e.run_f32_cols();
console.log('f32 cols mismatches', badCols);
const badGgmlCols = e.run_ggml_cols();
console.log('ggml cols mismatches', badGgmlCols, 'first', e.first_failure());
const badAttention = e.run_attention();
console.log('attention mismatches', badAttention);
if (e.backends() < 2 || bad !== 0 || badCols !== 0 || badGgmlCols !== 0 || badAttention !== 0) {
  console.error('FAIL: simd128 must be compiled in and give the scalar bits on every case (first failure: 1000 * (type index + 1) + blocks)');
  process.exitCode = 1;
}
if (process.argv[3] === 'bench') {
  if (process.argv[4] !== 'f32') {
  const cols = Number(process.argv[4] || 4096);
  if (cols % 256 !== 0) throw new Error('bench: columns must be a multiple of 256');
  const names = ['F32','F16','Q4_0','Q4_1','Q5_0','Q5_1','Q8_0','Q2_K','Q3_K','Q4_K','Q5_K','Q6_K','IQ4_NL','IQ4_XS','BF16'];
  for (let ti = 1; ti < 15; ti++) {
    e.setup(ti, cols); const t = [0, 1].map(simd => { e.bench(simd, 1); let best = 1e12; for (let k = 0; k < 3; k++) { const s = process.hrtime.bigint(); e.bench(simd, 2); best = Math.min(best, Number(process.hrtime.bigint() - s) / 2); } return best / 1024; });
    console.log(names[ti].padEnd(7), 'scalar', t[0].toFixed(0), 'ns/row  simd128', t[1].toFixed(0), 'ns/row  x' + (t[0] / t[1]).toFixed(1));
  }
  }
  for (const cols of [768, 2048]) {
    for (const [name, ti] of [['Q4_0', 2], ['Q8_0', 6], ['Q4_K', 9], ['Q6_K', 11]]) {
      e.setup(ti, cols);
      const rows = e.ggml_cols_rows();
      const t = [0, 1].map(together => { e.bench_ggml_cols(together, 2); let best = 1e12; for (let k = 0; k < 5; k++) { const s = process.hrtime.bigint(); e.bench_ggml_cols(together, 10); best = Math.min(best, Number(process.hrtime.bigint() - s) / 10); } return best / (rows * 32); });
      console.log(name.padEnd(5), 'cols', cols, 'one at a time', t[0].toFixed(1), 'ns, together', t[1].toFixed(1), 'ns per row and activation  x' + (t[0] / t[1]).toFixed(2));
    }
  }
  for (const n of [768, 2048]) {
    e.setup_f32_cols(n);
    const rows = 64 * 1024 / (4 * n);
    const t = [0, 1].map(together => { e.bench_f32_cols(together, 2); let best = 1e12; for (let k = 0; k < 5; k++) { const s = process.hrtime.bigint(); e.bench_f32_cols(together, 10); best = Math.min(best, Number(process.hrtime.bigint() - s) / 10); } return best / (rows * 32); });
    console.log('f32 cols', n, 'one at a time', t[0].toFixed(1), 'ns, together', t[1].toFixed(1), 'ns per row and vector  x' + (t[0] / t[1]).toFixed(2));
  }
}
