// The `Llama` API of AOS.wasm under the real, unmodified npm @permaweb/ao-loader, with
// models served by a file-backed WeaveDrive (helpers.js) through the async imports
// (Asyncify). Run with ./run.sh. AOS_MODELS=dir overrides ../shared/models.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { REPO, OTHER, evalMsg, message, env, fileWeaveDrive, dataDir, loader } from './helpers.js'

const MODELS = process.env.AOS_MODELS || path.join(REPO, '..', 'shared', 'models')
const S260K = path.join(MODELS, 'stories260K')
const EXPECTED = fs.readFileSync(path.join(REPO, 'llama/tests/data/llama2c-run-greedy200.txt'), 'utf8')
  .replace(/\n$/, '')
const EXPECTED_DOG = fs.readFileSync(
  path.join(REPO, 'llama/tests/data/llama2c-run-t0.8-p1-s7-n100-TheDog.txt'), 'utf8')

const modelBytes = fs.readFileSync(path.join(S260K, 'stories260K.bin'))
const data = dataDir({
  model: path.join(S260K, 'stories260K.bin'),
  tok: path.join(S260K, 'tok512.bin'),
  gguf: path.join(S260K, 'stories260K-f32.gguf'),
  truncated: modelBytes.subarray(0, Math.floor(modelBytes.length * 0.6)),
  garbage: Buffer.from('this is not a model, just some text long enough to be read')
})
after(() => data.cleanup())
const { model: MODEL, tok: TOK, gguf: GGUF, truncated: TRUNCATED, garbage: GARBAGE } = data.ids
const MISSING = 'MissingMissingMissingMissingMissingMissing0'

const stats = {}
const WeaveDrive = fileWeaveDrive(data.dir, stats)
const ok = (r) => { assert.equal(r.Error, undefined, r.Error); return r.Output.data }

// One process with stories260K loaded, shared by the tests below (each starts from its Memory).
let loaded
const loadedMemory = async () => {
  if (loaded) return loaded
  const handle = await loader(WeaveDrive)
  const r0 = await handle(null, evalMsg('return 1'), env)
  const before = r0.Memory.byteLength
  const t = performance.now()
  const r = await handle(r0.Memory, evalMsg(`
    Progress = {}
    Logs = {}
    Llama.onProgress = function(f) Progress[#Progress + 1] = f end
    Llama.onLog = function(level, text) Logs[#Logs + 1] = level .. " " .. text end
    local info = Llama.load("/data/${MODEL}", "/data/${TOK}")
    return info.model.dim .. " " .. info.model.n_layers .. " " .. info.model.vocab_size .. " " .. info.model.seq_len`), env)
  const ms = performance.now() - t
  assert.equal(ok(r), '64 5 512 512')
  loaded = { handle, memory: r.Memory, before, after: r.Memory.byteLength, ms }
  return loaded
}

test('Llama.load of stories260K through WeaveDrive, then 200 greedy tokens equal llama2.c byte for byte', async (t) => {
  const { handle, memory, before, after, ms } = await loadedMemory()
  t.diagnostic(`load: ${modelBytes.length} bytes in ${ms.toFixed(1)} ms (${(modelBytes.length / ms / 1e3).toFixed(1)} MB/s, whole message); linear memory ${before} -> ${after} bytes`)
  const t0 = performance.now()
  const r = await handle(memory, evalMsg('Llama.setPrompt("") return Llama.run(200)'), env)
  const dt = performance.now() - t0
  assert.equal(ok(r), EXPECTED)
  t.diagnostic(`run(200): ${dt.toFixed(1)} ms, ${(200 / dt * 1e3).toFixed(0)} tokens/s (whole message)`)
})

test('the same story through a Llama.next() loop', async () => {
  const { handle, memory } = await loadedMemory()
  const r = await handle(memory, evalMsg(`
    Llama.setPrompt("")
    local parts = {}
    for i = 1, 200 do
      local piece = Llama.next()
      if piece == nil then break end
      parts[#parts + 1] = piece
    end
    return table.concat(parts)`), env)
  assert.equal(ok(r), EXPECTED)
})

test('Llama.onProgress fires during the load: increasing fractions ending at 1; onLog gets format and config', async () => {
  const { handle, memory } = await loadedMemory()
  const r = await handle(memory, evalMsg('return json.encode({ progress = Progress, logs = Logs })'), env)
  const { progress, logs } = JSON.parse(ok(r))
  assert.ok(progress.length >= 5, `only ${progress.length} progress calls`)
  assert.ok(progress.length <= 102, `${progress.length} progress calls: not throttled`)
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i] > progress[i - 1], `not increasing: ${progress}`)
  assert.ok(progress[0] > 0)
  assert.equal(progress[progress.length - 1], 1)
  const text = logs.join('\n')
  assert.match(text, /format llama2\.c/)
  assert.match(text, /config dim=64 hidden_dim=172 n_layers=5 n_heads=8 n_kv_heads=4 vocab_size=512 seq_len=512/)
  assert.match(text, new RegExp(`loaded ${modelBytes.length} of ${modelBytes.length} bytes`))
})

test('a loaded model stays in memory: a later message generates without loading again', async () => {
  const { handle, memory } = await loadedMemory()
  const opens = stats.opens
  const r = await handle(memory, evalMsg('return Llama.run("", 20) .. "|" .. Llama.info().position'), env)
  const [text, pos] = ok(r).split('|')
  assert.ok(EXPECTED.startsWith(text) && text.length > 20, text)
  assert.equal(pos, '21')
  assert.equal(stats.opens, opens, 'no WeaveDrive access')
})

test('GGUF (f32) without a tokenizer gives the same story', async () => {
  const handle = await loader(WeaveDrive)
  const r = await handle(null, evalMsg(`
    local info = Llama.load("${GGUF}")
    Llama.setPrompt("")
    return info.model.format .. "|" .. Llama.run(200)`), env)
  const [format, text] = ok(r).split('|')
  assert.match(format, /^GGUF v3/)
  assert.equal(text, EXPECTED)
})

test('a Handler in aos-llama style answers with a Message', async () => {
  const { handle, memory } = await loadedMemory()
  const r1 = await handle(memory, evalMsg(`
    Handlers.add("Ask", Handlers.utils.hasMatchingTag("Action", "Ask"), function(msg)
      Llama.setPrompt(msg.Data)
      ao.send({ Target = msg.From, Action = "Answer", Data = Llama.run(50) })
    end)`), env)
  ok(r1)
  const r2 = await handle(r1.Memory, message({ action: 'Ask', data: 'Once upon a time', from: OTHER }), env)
  ok(r2)
  assert.equal(r2.Messages.length, 1, JSON.stringify({ ...r2, Memory: undefined }))
  const m = r2.Messages[0]
  assert.equal(m.Target, OTHER)
  assert.ok(m.Tags.some((t) => t.name === 'Action' && t.value === 'Answer'))
  assert.ok(m.Data.length > 50, m.Data)
  // Greedy: the same prompt gives the same continuation, from a fresh context each time.
  const r3 = await handle(r2.Memory, message({ action: 'Ask', data: 'Once upon a time', from: OTHER }), env)
  assert.equal(r3.Messages[0].Data, m.Data)
})

test('a corrupt model, a garbage file and an unknown txid are Lua errors; the process keeps its memory', async () => {
  const { handle, memory } = await loadedMemory()
  const cases = [
    [TRUNCATED, /Llama\.load: cannot load \/data\/.*: truncated model file/],
    [GARBAGE, /Llama\.load: cannot load \/data\/.*: (unknown model format|bad model header)/],
    [MISSING, new RegExp(`Llama\\.load: model not found: /data/${MISSING}`)]
  ]
  for (const [id, re] of cases) {
    await assert.rejects(handle(memory, evalMsg(`Llama.load("/data/${id}", "/data/${TOK}")`), env),
      (e) => { assert.match(e.Error, re); return true })
  }
  // The loader threw: the host keeps the memory from before, with the model still loaded.
  const r = await handle(memory, evalMsg('Llama.setPrompt("") return Llama.run(200)'), env)
  assert.equal(ok(r), EXPECTED)
  // A missing tokenizer is an error too.
  await assert.rejects(handle(memory, evalMsg(`Llama.load("/data/${MODEL}", "/data/${MISSING}")`), env),
    (e) => { assert.match(e.Error, /tokenizer not found/); return true })
})

test('errors: run before load, prompt past the context, bad sampler settings; pcall sees strings', async () => {
  const handle = await loader(WeaveDrive)
  await assert.rejects(handle(null, evalMsg('return Llama.run(5)'), env),
    (e) => { assert.match(e.Error, /no model loaded; call Llama.load/); return true })
  const r0 = await handle(null, evalMsg('local ok, e = pcall(__llama.run, 5) return type(e) .. ": " .. e'), env)
  assert.equal(ok(r0), 'string: Llama: no model loaded; call Llama.load(...) first')
  const { memory } = await loadedMemory()
  await assert.rejects(handle(memory, evalMsg(`Llama.setPrompt(string.rep("Once upon a time ", 200))`), env),
    (e) => { assert.match(e.Error, /prompt past the context: \d+ tokens needed but the model's context holds 512/); return true })
  await assert.rejects(handle(memory, evalMsg('Llama.setSampler{temperature = -1}'), env),
    (e) => { assert.match(e.Error, /temperature must be/); return true })
  const r = await handle(memory, evalMsg('local ok, e = pcall(__llama.set_sampler, 1.0, 0.9, -3) return e'), env)
  assert.match(ok(r), /seed must be a non-negative integer/)
})

test('setSampler works without a model and persists across loads (llama2.c t=0.8 p=1 s=7 "The dog")', async () => {
  const handle = await loader(WeaveDrive)
  const r = await handle(null, evalMsg(`
    Llama.setSampler{temperature = 0.8, topp = 1.0, seed = 7}
    Llama.load("${MODEL}", "${TOK}")
    Llama.setPrompt("The dog")
    local a = Llama.run(40)
    Llama.load("${MODEL}", "${TOK}")
    Llama.setPrompt("The dog")
    local b = Llama.run(40)
    local s = Llama.info().sampler
    return a .. "|" .. b .. "|" .. s.seed`), env)
  const [a, b, seed] = ok(r).split('|')
  assert.ok(EXPECTED_DOG.startsWith('The dog' + a), a)
  assert.equal(b, a)
  assert.equal(seed, '7')
})

test('Llama.info and Llama.stop', async () => {
  const { handle, memory } = await loadedMemory()
  const r = await handle(memory, evalMsg(`
    local i = Llama.info()
    Llama.stop()
    local j = Llama.info()
    return json.encode({ i.engine, i.version, i.model.format, i.context_length, j.model == nil, Llama.isLoaded() })`), env)
  const [engine, version, format, ctx, gone, isLoaded] = JSON.parse(ok(r))
  assert.equal(engine, 'aos-llama')
  assert.match(version, /^\d+\.\d+\.\d+/)
  assert.match(format, /llama2\.c/)
  assert.equal(ctx, 512)
  assert.equal(gone, true)
  assert.equal(isLoaded, false)
})
