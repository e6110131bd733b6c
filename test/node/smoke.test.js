// Smoke test of AOS.wasm under the real, unmodified npm @permaweb/ao-loader, loaded the
// way the loader's own tests load process.wasm. Run with ./run.sh (Node 20 needs
// --experimental-wasm-memory64). AOS_WASM=path overrides ../../AOS.wasm.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import AoLoader from '@permaweb/ao-loader'

const FORMAT = 'wasm64-unknown-emscripten-draft_2024_02_15'
const wasmPath = process.env.AOS_WASM || fileURLToPath(new URL('../../AOS.wasm', import.meta.url))
const wasm = readFileSync(wasmPath)

const OWNER = 'OWNER-' + 'o'.repeat(37)
const PROCESS = 'PROCESS-' + 'p'.repeat(35)
const env = {
  Process: { Id: PROCESS, Owner: OWNER, Tags: [] },
  Module: { Id: 'MODULE-' + 'm'.repeat(36), Owner: OWNER, Tags: [] }
}
let nonce = 0
const evalMsg = (code) => ({
  Id: 'MSG-' + String(++nonce).padStart(39, '0'),
  Target: PROCESS,
  Owner: OWNER,
  From: OWNER,
  'Block-Height': '1000',
  Timestamp: String(1700000000000 + nonce),
  Module: env.Module.Id,
  Tags: [{ name: 'Action', value: 'Eval' }],
  Data: code
})

// A file-backed WeaveDrive (the glue calls Module.WeaveDrive(Module, FS)).
const TXID = 'T'.repeat(43)
const FILE = Buffer.from(Array.from({ length: 300000 }, (_, i) => 'abcdefghij'[i % 10]).join(''))
const WeaveDrive = (Module, FS) => ({
  async open (path) {
    if (path !== `/data/${TXID}`) return 'not found'
    if (!FS.analyzePath(path).exists) FS.writeFile(path, FILE)
    return FS.open(path, 'r').fd
  },
  async read (fd, dst, len) {
    return FS.read(FS.getStream(fd), Module.HEAP8, Number(dst), Number(len))
  },
  async close (fd) {
    FS.close(FS.getStream(fd))
    return 0
  }
})

const options = {
  format: FORMAT,
  inputEncoding: 'JSON-1',
  outputEncoding: 'JSON-1',
  memoryLimit: '1-gb',
  computeLimit: 9e12,
  extensions: [],
  WeaveDrive
}

test('Eval 1 + 1 returns 2 in Output.data', async () => {
  const handle = await AoLoader(wasm, options)
  const result = await handle(null, evalMsg('return 1 + 1'), env)
  assert.equal(result.Output.data, '2')
  assert.ok(result.Memory.byteLength > 0)
})

test('a global counter is carried across calls through Memory, and survives an error', async () => {
  const handle = await AoLoader(wasm, options)
  const code = 'Counter = (Counter or 0) + 1 return Counter'
  const r1 = await handle(null, evalMsg(code), env)
  assert.equal(r1.Output.data, '1')
  const r2 = await handle(r1.Memory, evalMsg(code), env)
  assert.equal(r2.Output.data, '2')

  // A Lua error: the loader throws the response (ok=false) carrying Error.
  await assert.rejects(handle(r2.Memory, evalMsg('Counter = 100 error("boom")'), env),
    (e) => typeof e.Error === 'string' && e.Error.includes('boom'))
  // pcall inside Lua is an ordinary Lua value, not an Error.
  const r3 = await handle(r2.Memory, evalMsg('return tostring(pcall(error, "x"))'), env)
  assert.equal(r3.Output.data, 'false')
  // The next call, on the memory from before the error, still works and sees Counter = 2.
  const r4 = await handle(r3.Memory, evalMsg(code), env)
  assert.equal(r4.Output.data, '3')

  // A fresh loader instance resumes from the Memory alone (as a compute unit does).
  const handle2 = await AoLoader(wasm, options)
  const r5 = await handle2(r4.Memory, evalMsg(code), env)
  assert.equal(r5.Output.data, '4')
})

test('WeaveDrive reads through the async imports (Asyncify), also inside pcall', async () => {
  const handle = await AoLoader(wasm, options)
  const r1 = await handle(null, evalMsg(`return __weavedrive.size("/data/${TXID}")`), env)
  assert.equal(r1.Output.data, String(FILE.length))
  const r2 = await handle(r1.Memory, evalMsg(
    `local ok, s = pcall(__weavedrive.read, "/data/${TXID}") return ok and #s .. ":" .. s:sub(1, 12) .. ":" .. s:sub(-3)`), env)
  assert.equal(r2.Output.data, `${FILE.length}:abcdefghijab:${FILE.subarray(-3).toString()}`)
})
