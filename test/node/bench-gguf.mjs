// Prompt processing and generation tokens/s of AOS.wasm under the real @permaweb/ao-loader
// (Node/V8) on one GGUF file: the V8 column of test/reference/bench.py, next to llama.cpp in
// wasm (wllama, also V8) on the same file.
//
//   node --experimental-wasm-memory64 --expose-gc bench-gguf.mjs MODEL PROMPT [TOKENS] [CONTEXT]
//
// Prints one JSON line: {load_ms, pp, tg, memory, prompt_tokens, tokens}. The module's own clocks
// are deterministic, so each figure is the wall time of a whole message minus that of an idle
// message on the same memory (`return 1`), which cancels the loader's per-message costs (JSON,
// the Memory copy it returns). One untimed prompt and a few tokens first: V8 compiles with Liftoff
// and tiers hot functions up to TurboFan while they run; the figures are of the tiered-up code.
import { performance } from 'node:perf_hooks'
import { evalMsg, env, fileWeaveDrive, dataDir, loader } from './helpers.js'

const [model, prompt, tokensArg, contextArg] = process.argv.slice(2)
if (!model || prompt === undefined) {
  console.error('usage: bench-gguf.mjs MODEL PROMPT [TOKENS] [CONTEXT]')
  process.exit(2)
}
const tokens = Number(tokensArg || 32)
const context = Number(contextArg || 2048)
const data = dataDir({ model })
const handle = await loader(fileWeaveDrive(data.dir), '16-gb')
let memory = null
const call = async (code) => {
  globalThis.gc?.() // with --expose-gc: collect the previous messages' Memory copies first
  const t = performance.now()
  // An Error result comes back as the thrown object (ao-loader), or in `.Error`.
  const r = await handle(memory, evalMsg(code), env).catch((e) => ({ Error: e?.Error ?? e }))
  const ms = performance.now() - t
  if (r.Error) throw new Error(`Eval failed: ${typeof r.Error === 'string' ? r.Error : JSON.stringify(r.Error)}`)
  memory = r.Memory
  return { out: r.Output.data, ms }
}
const idle = async () => Math.min((await call('return 1')).ms, (await call('return 1')).ms)
try {
  await call('return 1')
  const load = await call(`Llama.load("/data/${data.ids.model}", { context = ${context} }) return "loaded"`)
  const setPrompt = `Llama.setPrompt(${JSON.stringify(prompt)}) return Llama.info().position`
  await call(setPrompt)
  await call('for _ = 1, 4 do Llama.next() end return 1')
  const idleBefore = await idle()
  const pp = await call(setPrompt)
  const tg = await call(`local n = 0 for _ = 1, ${tokens} do if Llama.next() == nil then break end n = n + 1 end return n`)
  // Idle messages before and after: one slow idle pair (a collection, fresh pages for the
  // Memory copy) had made a 2.5 s prompt read as 50 ms (1428 tok/s on the 110M F32 file).
  const idleMs = Math.min(idleBefore, await idle())
  const promptTokens = Number(pp.out)
  const generated = Number(tg.out)
  if (!(promptTokens > 0) || generated < 2) throw new Error(`unexpected output: prompt ${pp.out}, generated ${tg.out}`)
  console.log(JSON.stringify({
    load_ms: +load.ms.toFixed(1),
    // The first generated token is sampled from the prompt's logits: n tokens cost n - 1 passes
    // (as bench.py counts natively and under wasmtime).
    pp: promptTokens / Math.max(pp.ms - idleMs, 1e-3) * 1e3,
    tg: (generated - 1) / Math.max(tg.ms - idleMs, 1e-3) * 1e3,
    memory: memory.byteLength,
    prompt_tokens: promptTokens,
    tokens: generated
  }))
} finally {
  data.cleanup()
}
