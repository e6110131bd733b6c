// A Llama-3.2-1B-shaped Q4_K_M GGUF (1.24 B parameters, Llama 3 vocabulary, llama3 rope, K-quant
// mix as llama-quantize writes it) in AOS.wasm under the real @permaweb/ao-loader within a 2 GiB
// Memory-Limit (issue 9): the weights stay packed (linear memory after the load ≈ file + KV
// cache + the runtime, not the 4.9 GB of f32), and greedy tokens equal the native CLI's.
//
// The file is written at test time by test/reference/make-models.py --big llama32-1b (random weights,
// quantized by llama.cpp's own llama-quantize); test.sh sets AOS_1B_GGUF to it. Without it the
// test is skipped with a note, unless AOS_REQUIRE_REFERENCE=1 (test.sh): then it fails.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { evalMsg, env, fileWeaveDrive, dataDir, loader } from './helpers.js'

const MODEL_FILE = process.env.AOS_1B_GGUF
const missing = !MODEL_FILE || !fs.existsSync(MODEL_FILE)
if (missing && process.env.AOS_REQUIRE_REFERENCE === '1') throw new Error(`AOS_1B_GGUF=${MODEL_FILE}: the 1B-shaped GGUF is required (test/reference/make-models.py --big llama32-1b DIR)`)
const skip = missing && 'AOS_1B_GGUF is not set: write it with test/reference/make-models.py --big llama32-1b DIR'

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'aos-llama', 'target')
const BIN = process.env.AOS_LLAMA_BIN || [path.join(targetDir, 'debug', 'aos-llama'), path.join(targetDir, 'release', 'aos-llama')]
  .find((p) => fs.existsSync(p))
const LIMIT = 2 * 2 ** 30
const CONTEXT = 2048
const PROMPT = 'The history of the Roman Empire'
const N = 6
const MiB = (n) => (n / 2 ** 20).toFixed(0) + ' MiB'
const gc = () => globalThis.gc?.()

const data = missing ? null : dataDir({ big: MODEL_FILE })
after(() => data?.cleanup())
const ok = (r) => { assert.equal(r.Error, undefined, r.Error); return r.Output.data }

test('the 1B-shaped Q4_K_M GGUF runs in AOS.wasm within 2 GiB and gives the native tokens', { skip }, async (t) => {
  const size = fs.statSync(MODEL_FILE).size
  const handle = await loader(fileWeaveDrive(data.dir), '2-gb')
  const r0 = await handle(null, evalMsg('return 1'), env)
  const before = r0.Memory.byteLength
  let t0 = performance.now()
  let r = await handle(r0.Memory, evalMsg(`
    local i = Llama.load("/data/${data.ids.big}", { context = ${CONTEXT} })
    local m = i.model
    local types = {}
    for k, v in pairs(m.types) do types[#types + 1] = k .. "=" .. v end
    table.sort(types)
    return table.concat({ m.dim, m.n_layers, m.n_kv_heads, m.head_dim, m.vocab_size, m.tokenizer, table.concat(types, ",") }, " ")`), env)
  const loadMs = performance.now() - t0
  const [dim, layers, kvHeads, headDim, vocab, tokenizer, types] = ok(r).split(' ')
  assert.deepEqual([+dim, +layers, +kvHeads, +headDim, +vocab, tokenizer], [2048, 16, 8, 64, 128256, 'gpt2/llama-bpe'])
  assert.match(types, /Q4_K=\d+/)
  assert.match(types, /Q6_K=\d+/)
  const afterLoad = r.Memory.byteLength
  const kv = 2 * +layers * CONTEXT * +kvHeads * +headDim * 4
  t.diagnostic(`file ${MiB(size)} (${types}); load ${(loadMs / 1e3).toFixed(1)} s; linear memory ${MiB(before)} -> ${MiB(afterLoad)} ` +
    `(file + KV cache ${MiB(kv)} + ${MiB(afterLoad - before - size - kv)} runtime and buffers)`)
  assert.ok(afterLoad <= LIMIT, `linear memory ${afterLoad} over the 2 GiB Memory-Limit`)
  assert.ok(afterLoad - before <= size + kv + (96 << 20), `memory grew by ${afterLoad - before}: weights widened or copied?`)
  const mem = r.Memory
  r = null
  gc()

  t0 = performance.now()
  r = await handle(mem, evalMsg(`Llama.setPrompt(${JSON.stringify(PROMPT)}) local n = Llama.info().position return n .. "\\0" .. Llama.run(${N})`), env)
  const genMs = performance.now() - t0
  const [n, text] = ok(r).split('\0')
  assert.ok(r.Memory.byteLength <= LIMIT)
  r = null
  gc()
  const out = execFileSync(BIN, ['run', '--model', MODEL_FILE, '--context', String(CONTEXT), '--prompt', PROMPT,
    '--temperature', '0', '--steps', String(Number(n) - 1 + N)], { stdio: ['ignore', 'pipe', 'pipe'] }).toString('utf8')
  assert.equal(out, PROMPT + text + '\n')
  t.diagnostic(`prompt ${n} tokens + ${N} generated: ${(genMs / 1e3).toFixed(1)} s (whole message); ${JSON.stringify(text)}`)
})
