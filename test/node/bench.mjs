// Tokens/s and load throughput of AOS.wasm under the real @permaweb/ao-loader (Node/V8).
//
//   node --experimental-wasm-memory64 --expose-gc bench.mjs MODEL [TOKENIZER] [TOKENS] [REPEATS] [LOOPS]
//
// Loads MODEL through the file-backed WeaveDrive (helpers.js), then times greedy
// generation from an empty prompt (after one untimed warm-up generation). Time inside the module is not observable (the glue's
// clocks are deterministic), so each figure is a difference of two whole messages on
// the same memory: `setPrompt("") run(TOKENS)` minus `setPrompt("") run(0)`, which
// cancels the loader's per-message costs (JSON, the memory snapshot copy). Prints the
// best and the median of REPEATS. LOOPS > 1 repeats the generation (setPrompt("") then
// run(TOKENS)) that many times inside the timed message, for small models whose
// TOKENS tokens take less time than the jitter of a message (stories260K: 200 tokens
// ≈ 30 ms, an idle message ≈ 50 ± 10 ms). AOS_WASM=path picks the module. compare.mjs runs it
// next to wasmtime (aos-llama process) and native (aos-llama run).
import path from 'node:path'
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { evalMsg, env, fileWeaveDrive, dataDir, loader, wasmPath } from './helpers.js'

const [model, tokenizer, tokensArg, repeatsArg, loopsArg] = process.argv.slice(2)
if (!model) { console.error('usage: bench.mjs MODEL [TOKENIZER|-] [TOKENS] [REPEATS] [LOOPS]'); process.exit(2) }
const loops = Number(loopsArg || 1)
const files = { model }
if (tokenizer && tokenizer !== '-') files.tok = tokenizer
const data = dataDir(files)
const handle = await loader(fileWeaveDrive(data.dir), '16-gb')
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const call = async (memory, code) => {
  globalThis.gc?.() // with --expose-gc: collect the previous messages' Memory copies first
  const t = performance.now()
  const r = await handle(memory, evalMsg(code), env)
  return { r, ms: performance.now() - t }
}
try {
  const r0 = (await call(null, 'return 1')).r
  const tokArg = files.tok ? `, "${data.ids.tok}"` : ''
  const load = await call(r0.Memory, `local i = Llama.load("${data.ids.model}"${tokArg}) return i.model.seq_len`)
  const seqLen = Number(load.r.Output.data)
  const n = Math.min(Number(tokensArg || 200), seqLen - 1)
  const mem = load.r.Memory
  let produced = 0
  const samples = []
  // One untimed generation first: V8 compiles wasm with Liftoff and tiers hot functions
  // up to TurboFan while they run; the samples measure the tiered-up code.
  await call(mem, `Llama.setPrompt("") local s = Llama.run(${n}) return 1`)
  for (let i = 0; i < Number(repeatsArg || 3); i++) {
    const full = await call(mem, `for i = 1, ${loops} do Llama.setPrompt("") local s = Llama.run(${n}) end return Llama.info().position`)
    const empty = await call(mem, 'Llama.setPrompt("") local s = Llama.run(0) return Llama.info().position')
    produced = Number(full.r.Output.data) - 1
    samples.push((full.ms - empty.ms) / loops)
  }
  const idle = await call(mem, 'return 1')
  const bytes = fs.statSync(model).size
  console.log(JSON.stringify({
    wasm: path.basename(wasmPath),
    model: path.basename(model),
    bytes,
    load_ms: +load.ms.toFixed(1),
    load_MBps: +(bytes / load.ms / 1e3).toFixed(1),
    memory_before_load: r0.Memory.byteLength,
    memory_after_load: mem.byteLength,
    idle_message_ms: +idle.ms.toFixed(1),
    tokens: produced,
    loops,
    tokens_per_s: +(produced / Math.min(...samples) * 1e3).toFixed(1),
    tokens_per_s_median: +(produced / median(samples) * 1e3).toFixed(1),
    samples_tokens_per_s: samples.map((ms) => +(produced / ms * 1e3).toFixed(1))
  }))
} finally {
  data.cleanup()
}
