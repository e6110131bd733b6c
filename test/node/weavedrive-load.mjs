// The path a real compute unit takes to a model (issue 9): AOS.wasm under the real
// @permaweb/ao-loader with the CU's own WeaveDrive extension, the npm @permaweb/weavedrive,
// pointed at a gateway (arlocal in tools/tests/publish.rs). WeaveDrive checks that the txid
// is admissible (an `Attestation` transaction naming it, by the process's Scheduler, found by
// GraphQL), then serves `/data/<txid>` with `HEAD /<txid>` (for its size) and ranged
// `GET /<txid>` requests.
//
// arlocal 1.1.66 answers neither as a gateway does: its HEAD route writes Content-Length into
// the *request* headers (koa's ctx.headers), so the response has none and WeaveDrive sizes the
// file at 0 bytes; and its data route ignores Range, sending the whole file from byte 0 for
// every read. So WeaveDrive talks to arlocal through `rangeGateway` below: HEAD answered from
// arlocal's own `/tx/<id>` (data_size), ranges cut from arlocal's `/<id>` data, everything else
// (GraphQL, /tx, /block) passed through unchanged.
//
//   node weavedrive-load.mjs GATEWAY_URL MODEL_TXID SCHEDULER_ADDRESS QUESTION
// Prints one JSON line: {load, chat, weavedrive: {heads, gets, graphql, bytes}}.
import http from 'node:http'
import { createRequire } from 'node:module'
import { FORMAT, OWNER, PROCESS, env as baseEnv, evalMsg, loader } from './helpers.js'

const require = createRequire(import.meta.url)
const weaveDrive = require('@permaweb/weavedrive')

const [gateway, model, scheduler, question] = process.argv.slice(2)
if (!question) throw new Error('usage: node weavedrive-load.mjs GATEWAY_URL MODEL_TXID SCHEDULER_ADDRESS QUESTION')

/** HEAD and Range in front of arlocal (see above); listens on 127.0.0.1; resolves to its URL. */
const rangeGateway = (upstream) => new Promise((resolve) => {
  const cache = new Map() // txid -> Buffer of its data (one model per run)
  const sizes = new Map() // txid -> data_size
  const data = async (id) => {
    if (!cache.has(id)) {
      const r = await realFetch(`${upstream}/${id}`)
      if (!r.ok) return null
      cache.set(id, Buffer.from(await r.arrayBuffer()))
    }
    return cache.get(id)
  }
  const server = http.createServer(async (req, res) => {
    try {
      const m = /^\/([A-Za-z0-9_-]{43})$/.exec(req.url)
      if (m && (req.method === 'HEAD' || req.method === 'GET')) {
        if (!sizes.has(m[1])) {
          const tx = await realFetch(`${upstream}/tx/${m[1]}`)
          if (!tx.ok) { res.writeHead(404).end(); return }
          sizes.set(m[1], Number((await tx.json()).data_size))
        }
        const size = sizes.get(m[1])
        if (req.method === 'HEAD') { res.writeHead(200, { 'Content-Length': size, 'Accept-Ranges': 'bytes' }).end(); return }
        const body = await data(m[1])
        const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '')
        if (!range) { res.writeHead(200, { 'Content-Length': body.length }).end(body); return }
        const from = Number(range[1])
        const to = Math.min(range[2] === '' ? size - 1 : Number(range[2]), size - 1) // inclusive
        const part = body.subarray(from, to + 1)
        res.writeHead(206, { 'Content-Length': part.length, 'Content-Range': `bytes ${from}-${to}/${size}` }).end(part)
        return
      }
      const chunks = []
      for await (const c of req) chunks.push(c)
      const r = await realFetch(upstream + req.url, {
        method: req.method,
        headers: { 'content-type': req.headers['content-type'] || 'application/json' },
        body: chunks.length ? Buffer.concat(chunks) : undefined
      })
      res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') || 'application/octet-stream' })
        .end(Buffer.from(await r.arrayBuffer()))
    } catch (e) {
      res.writeHead(502).end(String(e))
    }
  })
  server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${server.address().port}`, server }))
})

// Count what WeaveDrive asks of the gateway (it calls the global fetch).
const stats = { heads: 0, gets: 0, graphql: 0, bytes: 0 }
const realFetch = globalThis.fetch
globalThis.fetch = async (url, opts = {}) => {
  const res = await realFetch(url, opts)
  if (String(url).endsWith('/graphql')) stats.graphql++
  else if (opts.method === 'HEAD') stats.heads++
  else if (opts.headers?.Range) {
    stats.gets++
    const n = Number(res.headers.get('Content-Length'))
    if (Number.isFinite(n)) stats.bytes += n
  }
  return res
}

const spawnTags = [
  { name: 'Data-Protocol', value: 'ao' },
  { name: 'Type', value: 'Process' },
  { name: 'Scheduler', value: scheduler },
  { name: 'Extension', value: 'WeaveDrive' }
]
const moduleTags = [
  { name: 'Data-Protocol', value: 'ao' },
  { name: 'Type', value: 'Module' },
  { name: 'Module-Format', value: FORMAT },
  { name: 'Extension', value: 'WeaveDrive' }
]
const front = await rangeGateway(gateway.replace(/\/$/, ''))
const env = { Process: { ...baseEnv.Process, Tags: spawnTags }, Module: { ...baseEnv.Module, Tags: moduleTags } }
// What a CU passes the loader for WeaveDrive: the gateway, the spawn and module tags.
const handle = await loader(weaveDrive, '1-gb', {
  ARWEAVE: front.url,
  spawn: { id: PROCESS, owner: OWNER, tags: spawnTags },
  module: { id: baseEnv.Module.Id, owner: OWNER, tags: moduleTags }
})

// The loader rejects a message whose evaluation failed (the module answers ok = false).
let memory = null
const send = async (code) => {
  try {
    const r = await handle(memory, evalMsg(code), env)
    memory = r.Memory
    return { data: r.Output.data }
  } catch (e) {
    return { error: String(e?.Error ?? e) }
  }
}
const load = await send(`
  local i = Llama.load("/data/${model}")
  return i.model.architecture .. " " .. i.model.tokenizer .. " " .. i.model.bytes`)
const chat = await send(`return Llama.chat({ { role = "user", content = ${JSON.stringify(question)} } }, 64)`)
// (A txid nobody attested is not tried here: @permaweb/weavedrive then returns
// "HALT: FILE NOT FOUND" from the async open, which the loader's glue throws outside the
// message's promise, ending the node process: a CU halts that evaluation by design.)
front.server.close()
console.log(JSON.stringify({ load, chat, weavedrive: stats }))
