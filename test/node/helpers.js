// Shared helpers for the Node tests of AOS.wasm under the real, unmodified npm
// @permaweb/ao-loader: loader options, message builders and a file-backed WeaveDrive.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'
import AoLoader from '@permaweb/ao-loader'

export const FORMAT = 'wasm64-unknown-emscripten-draft_2024_02_15'
export const REPO = fileURLToPath(new URL('../../', import.meta.url))
export const wasmPath = process.env.AOS_WASM || path.join(REPO, 'AOS.wasm')
export const wasm = fs.readFileSync(wasmPath)

export const OWNER = 'OWNER-' + 'o'.repeat(37)
export const OTHER = 'OTHER-' + 'x'.repeat(37)
export const PROCESS = 'PROCESS-' + 'p'.repeat(35)
export const env = {
  Process: { Id: PROCESS, Owner: OWNER, Tags: [] },
  Module: { Id: 'MODULE-' + 'm'.repeat(36), Owner: OWNER, Tags: [] }
}

let nonce = 0
export const message = ({ action, data = '', from = OWNER, tags = [] }) => ({
  Id: 'MSG-' + String(++nonce).padStart(39, '0'),
  Target: PROCESS,
  Owner: from,
  From: from,
  'Block-Height': '1000',
  Timestamp: String(1700000000000 + nonce),
  Module: env.Module.Id,
  Tags: [{ name: 'Action', value: action }, ...tags],
  Data: data
})
export const evalMsg = (code) => message({ action: 'Eval', data: code })

/// A txid-shaped name (43 characters of the base64url alphabet) from a short label.
export const txid = (label) => (label + '_'.repeat(43)).slice(0, 43).replace(/[^A-Za-z0-9_-]/g, '-')

/**
 * A `Module.WeaveDrive`-compatible drive (the glue calls `Module.WeaveDrive(Module, FS)`)
 * serving `/data/<txid>` from the files of `dir`, named by txid. Like @permaweb/weavedrive
 * it creates an empty emscripten-FS node whose size (`usedBytes`, what the glue's
 * fd_seek SEEK_END sees) is the real file's, and reads ranges straight from the file on
 * disk into the module's memory: no copy of the file lives in JS. An unknown txid
 * returns 0, as @permaweb/weavedrive does for a non-admissible id (the module then
 * raises a Lua error); returning a string would make the glue throw
 * `HALT: FILE NOT FOUND` from an async import, which Node reports as an unhandled
 * rejection.
 */
export const fileWeaveDrive = (dir, stats = {}) => (Module, FS) => ({
  async open (p) {
    const m = /^\/data\/([A-Za-z0-9_-]{43})$/.exec(p)
    const real = m && path.join(dir, m[1])
    if (!real || !fs.existsSync(real)) return 0
    const size = fs.statSync(real).size
    if (!FS.analyzePath('/data').exists) FS.mkdir('/data')
    if (!FS.analyzePath(p).exists) {
      FS.writeFile(p, new Uint8Array(0))
      Object.defineProperty(FS.lookupPath(p).node, 'usedBytes', { get: () => size })
    }
    const stream = FS.open(p, 'r')
    stream.aosFile = { fd: fs.openSync(real, 'r'), size }
    stats.opens = (stats.opens || 0) + 1
    return stream.fd
  },
  async read (fd, dst, len) {
    const stream = FS.getStream(fd)
    const f = stream.aosFile
    const n = Math.min(Number(len), f.size - stream.position)
    if (n <= 0) return 0
    const got = fs.readSync(f.fd, Module.HEAP8, Number(dst), n, stream.position)
    stream.position += got
    stats.reads = (stats.reads || 0) + 1
    stats.bytes = (stats.bytes || 0) + got
    return got
  },
  async close (fd) {
    const stream = FS.getStream(fd)
    if (stream.aosFile) fs.closeSync(stream.aosFile.fd)
    FS.close(stream)
    return 0
  }
})

/** A temp directory of txid-named files: `{label: sourcePath}` → `{dir, ids: {label: txid}}`. */
export const dataDir = (files) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aos-node-data-'))
  const ids = {}
  for (const [label, src] of Object.entries(files)) {
    ids[label] = txid(label)
    if (typeof src === 'string') fs.symlinkSync(path.resolve(src), path.join(dir, ids[label]))
    else fs.writeFileSync(path.join(dir, ids[label]), src)
  }
  return { dir, ids, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** The loader as a CU starts it; `extra` adds options (e.g. ARWEAVE, spawn, module for the npm WeaveDrive). */
export const loader = (WeaveDrive, memoryLimit = '4-gb', extra = {}) => AoLoader(wasm, {
  format: FORMAT,
  inputEncoding: 'JSON-1',
  outputEncoding: 'JSON-1',
  memoryLimit,
  computeLimit: 9e12,
  extensions: [],
  WeaveDrive,
  ...extra
})

const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'aos-llama', 'target')
/** The native CLI: AOS_LLAMA_BIN, or the debug / release build in the target directory. */
export const cliBin = process.env.AOS_LLAMA_BIN || [path.join(targetDir, 'debug', 'aos-llama'), path.join(targetDir, 'release', 'aos-llama')]
  .find((p) => fs.existsSync(p))

/**
 * A real model named by environment variable `name` (test/reference/fetch.sh's env.sh sets it):
 * `{ file, skip }`, `skip` a note when it is missing. Under AOS_REQUIRE_REFERENCE=1 (test.sh)
 * a missing model throws instead.
 */
export const referenceModel = (name, what) => {
  const file = process.env[name]
  const missing = !file || !fs.existsSync(file)
  if (missing && process.env.AOS_REQUIRE_REFERENCE === '1') {
    throw new Error(`${name}=${file}: ${what} is required (run test/reference/fetch.sh and source its env.sh)`)
  }
  return { file, skip: missing && `${name} is not set: run test/reference/fetch.sh, then \`source ~/.cache/aos-llama/reference/env.sh\`` }
}

/** `aos-llama run` natively, greedy: the continuation of `prompt` (the CLI prints prompt + text + "\n"). */
export const nativeRun = (model, prompt, steps) => {
  const out = execFileSync(cliBin, ['run', '--model', model, '--prompt', prompt, '--temperature', '0',
    '--steps', String(steps)], { maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'pipe'] })
  const p = Buffer.from(prompt)
  if (!out.subarray(0, p.length).equals(p)) throw new Error('aos-llama run did not print the prompt first')
  if (out[out.length - 1] !== 10) throw new Error('aos-llama run did not end with a newline')
  return out.subarray(p.length, out.length - 1).toString('utf8')
}
