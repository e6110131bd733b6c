// Tokens/s and load throughput of AOS.wasm under the real @permaweb/ao-loader (Node/V8).
//
//   node --experimental-wasm-memory64 bench.mjs MODEL [TOKENIZER] [TOKENS] [REPEATS]
//
// Loads MODEL through the file-backed WeaveDrive (helpers.js), then times greedy
// generation from an empty prompt. Time inside the module is not observable (the glue's
// clocks are deterministic), so each figure is a difference of two whole messages on
// the same memory: `setPrompt("") run(TOKENS)` minus `setPrompt("") run(0)`, which
// cancels the loader's per-message costs (JSON, the memory snapshot copy). Best of
// REPEATS. AOS_WASM=path picks the module.
import path from 'node:path'
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { evalMsg, env, fileWeaveDrive, dataDir, loader, wasmPath } from './helpers.js'

const [model, tokenizer, tokensArg, repeatsArg] = process.argv.slice(2)
if (!model) { console.error('usage: bench.mjs MODEL [TOKENIZER|-] [TOKENS] [REPEATS]'); process.exit(2) }
const files = { model }
if (tokenizer && tokenizer !== '-') files.tok = tokenizer
const data = dataDir(files)
const handle = await loader(fileWeaveDrive(data.dir), '16-gb')
const call = async (memory, code) => {
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
  let best = Infinity; let produced = 0
  for (let i = 0; i < Number(repeatsArg || 3); i++) {
    const full = await call(mem, `Llama.setPrompt("") local s = Llama.run(${n}) return Llama.info().position`)
    const empty = await call(mem, 'Llama.setPrompt("") local s = Llama.run(0) return Llama.info().position')
    produced = Number(full.r.Output.data) - 1
    best = Math.min(best, full.ms - empty.ms)
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
    tokens_per_s: +(produced / best * 1e3).toFixed(1)
  }))
} finally {
  data.cleanup()
}
