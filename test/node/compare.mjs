// Tokens/s of the same models on three hosts: AOS.wasm under the real @permaweb/ao-loader
// (Node/V8, bench.mjs), the same AOS.wasm under wasmtime (`aos-llama process`, the local
// compute unit) and the native engine (`aos-llama run`). Models: stories260K and a
// random-weight model of llama2.c's 15M shape (dim 288, hidden 768, 6 layers, 6 heads,
// vocab 32000 with the Llama 2 tokenizer, seq_len 256; model-gen.js, in a temp dir).
//
//   node --experimental-wasm-memory64 compare.mjs [TOKENS=200] [REPEATS=3] [--large]
//
// --large adds the 1.16 GB model of large.test.js (dim 1024, hidden 2816, 20 layers,
// 16 heads, vocab 32000, seq_len 256; about two more minutes).
//
// Every figure is greedy generation from an empty prompt, TOKENS tokens after BOS, the
// median of REPEATS:
// - Node: bench.mjs, a run(TOKENS) message minus a run(0) message on the same memory
//   (after one untimed generation, so V8 has tiered the hot code up to TurboFan);
// - wasmtime: the same two Evals (and loops) through one `aos-llama process` (stdin/stdout), timed
//   from the line sent to the reply (after the same warm-up); module compilation and
//   the load are outside;
// - native: `aos-llama run --temperature 0 --steps TOKENS` (from an empty prompt: TOKENS tokens after BOS), its "achieved tok/s".
// AOS_LLAMA=path picks the CLI (default ../../target/release/aos-llama), AOS_WASM the
// module, AOS_MODELS the models directory.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { REPO, wasmPath, dataDir } from './helpers.js'
import { writeRandomV1 } from './model-gen.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const CLI = process.env.AOS_LLAMA || path.join(REPO, 'target', 'release', 'aos-llama')
const MODELS = process.env.AOS_MODELS || path.join(REPO, '..', 'shared', 'models')
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const LARGE = process.argv.includes('--large')
const TOKENS = Number(args[0] || 200)
const REPEATS = Number(args[1] || 3)
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const round = (x) => +x.toFixed(x < 100 ? 1 : 0)
for (const f of [CLI, wasmPath]) if (!fs.existsSync(f)) { console.error(`compare.mjs: missing ${f}`); process.exit(2) }

const tmp = dataDir({})
process.on('exit', () => tmp.cleanup())
const m15 = path.join(tmp.dir, 'random-15M.bin')
writeRandomV1(m15, { dim: 288, hidden: 768, layers: 6, heads: 6, vocab: 32000, seqLen: 256 })
const MODELS_TO_RUN = [
  // loops: generations per timed message (bench.mjs LOOPS), so that the work outweighs
  // the jitter of a message.
  { name: 'stories260K', model: path.join(MODELS, 'stories260K', 'stories260K.bin'), tok: path.join(MODELS, 'stories260K', 'tok512.bin'), loops: 10 },
  { name: '15M (random)', model: m15, tok: path.join(MODELS, 'llama2-tokenizer', 'tokenizer.bin'), loops: 1 }
]
if (LARGE) {
  const big = path.join(tmp.dir, 'random-1.16GB.bin')
  writeRandomV1(big, { dim: 1024, hidden: 2816, layers: 20, heads: 16, vocab: 32000, seqLen: 256 })
  MODELS_TO_RUN.push({ name: '1.16 GB (random)', model: big, tok: path.join(MODELS, 'llama2-tokenizer', 'tokenizer.bin'), loops: 1 })
}

const node = (m) => {
  const out = execFileSync(process.execPath, ['--experimental-wasm-memory64', '--expose-gc', path.join(HERE, 'bench.mjs'), m.model, m.tok, String(TOKENS), String(REPEATS), String(m.loops)],
    { encoding: 'utf8', maxBuffer: 1 << 24 })
  const r = JSON.parse(out.trim().split('\n').pop())
  if (r.tokens !== TOKENS) throw new Error(`bench.mjs produced ${r.tokens} tokens`)
  return r.samples_tokens_per_s
}

// One `aos-llama process`: send Eval lines, read the reply lines (the code returns one line).
const wasmtime = async (m) => {
  const data = dataDir({ model: m.model, tok: m.tok })
  const child = spawn(CLI, ['process', '--module', wasmPath, '--data-dir', data.dir], { stdio: ['pipe', 'pipe', 'inherit'] })
  let buffered = ''
  let waiting = null
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => {
    buffered += d
    let i
    while (waiting && (i = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, i)
      buffered = buffered.slice(i + 1)
      const w = waiting; waiting = null; w(line)
    }
  })
  const evalLine = (code) => new Promise((resolve, reject) => {
    const t = performance.now()
    waiting = (line) => line.startsWith('error') ? reject(new Error(line)) : resolve({ line, ms: performance.now() - t })
    child.stdin.write(code + '\n')
  })
  try {
    const load = await evalLine(`local i = Llama.load("${data.ids.model}", "${data.ids.tok}") return "@" .. i.model.seq_len`)
    if (!load.line.startsWith('@')) throw new Error(load.line)
    await evalLine(`Llama.setPrompt("") local s = Llama.run(${TOKENS}) return "@"`) // warm-up, as bench.mjs
    const samples = []
    for (let i = 0; i < REPEATS; i++) {
      const full = await evalLine(`for i = 1, ${m.loops} do Llama.setPrompt("") local s = Llama.run(${TOKENS}) end return "@" .. Llama.info().position`)
      const empty = await evalLine('Llama.setPrompt("") local s = Llama.run(0) return "@" .. Llama.info().position')
      const produced = Number(full.line.slice(1)) - 1
      if (produced !== TOKENS) throw new Error(`wasmtime produced ${produced} tokens`)
      samples.push(TOKENS * m.loops / (full.ms - empty.ms) * 1e3)
    }
    return samples
  } finally {
    child.stdin.end()
    await new Promise((resolve) => child.on('close', resolve))
    data.cleanup()
  }
}

const native = (m) => {
  const samples = []
  for (let i = 0; i < REPEATS; i++) {
    const r = spawnSyncStderr(CLI, ['run', '--model', m.model, '--tokenizer', m.tok, '--temperature', '0', '--steps', String(TOKENS)])
    const g = /achieved tok\/s: ([\d.]+) \((\d+) tokens/.exec(r)
    if (!g) throw new Error('no "achieved tok/s" in: ' + r)
    if (Number(g[2]) !== TOKENS) throw new Error(`native generated ${g[2]} tokens`)
    samples.push(Number(g[1]))
  }
  return samples
}
const spawnSyncStderr = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`)
  return r.stderr
}

const rows = []
for (const m of MODELS_TO_RUN) {
  const n = node(m)
  const w = await wasmtime(m)
  const x = native(m)
  const row = { model: m.name, bytes: fs.statSync(m.model).size, tokens: TOKENS, loops: m.loops, node: round(median(n)), wasmtime: round(median(w)), native: round(median(x)), samples: { node: n, wasmtime: w.map(round), native: x } }
  console.log(JSON.stringify(row))
  rows.push(row)
}
console.log(`\ntokens/s, greedy, ${TOKENS} tokens from an empty prompt, median of ${REPEATS}`)
console.log('| model | Node/V8 (ao-loader) | wasmtime (aos-llama process) | native (aos-llama run) |')
console.log('|---|---:|---:|---:|')
for (const r of rows) console.log(`| ${r.model} | ${r.node} | ${r.wasmtime} | ${r.native} |`)
