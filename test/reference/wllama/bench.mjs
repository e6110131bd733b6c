// llama.cpp in wasm: npm @wllama/wllama, single thread, in Debian's headless Chromium, on one GGUF
// file; the anchor of test/reference/bench.py's AOS.wasm columns (AOS.wasm under V8 is
// test/node/bench-gguf.mjs).
//
//   node bench.mjs MODEL PROMPT [TOKENS] [CONTEXT]
//
// Serves page.html, wllama's dist and MODEL on a loopback port, opens the page in Chromium
// (playwright-core; CHROMIUM=path, default /usr/bin/chromium) and prints one JSON line:
// {load_ms, pp, tg, prompt_tokens, tokens, version, threads, multithread} with pp and tg the tokens/s
// of llama.cpp's own timings (llama-server's prompt_per_second and predicted_per_second).
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const [model, prompt, tokensArg, contextArg] = process.argv.slice(2)
if (!model || prompt === undefined) {
  console.error('usage: bench.mjs MODEL PROMPT [TOKENS] [CONTEXT]')
  process.exit(2)
}
const here = path.dirname(fileURLToPath(import.meta.url))
const wllamaDir = path.join(here, 'node_modules', '@wllama', 'wllama')
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' }
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://localhost').pathname)
  let file = null
  if (url === '/') file = path.join(here, 'page.html')
  else if (url === '/model.gguf') file = path.resolve(model)
  else if (url.startsWith('/wllama/') && !url.includes('..')) file = path.join(wllamaDir, url.slice('/wllama/'.length))
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404)
    res.end()
    return
  }
  res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Content-Length': fs.statSync(file).size })
  fs.createReadStream(file).pipe(res)
})
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
// The flags that keep Chromium off the (closed) network: otherwise it retries Google's hosts.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync']
})
try {
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(`http://127.0.0.1:${server.address().port}/`)
  await page.waitForFunction(() => window.ready === true)
  const r = await page.evaluate((a) => window.bench(a), {
    prompt, tokens: Number(tokensArg || 32), context: Number(contextArg || 2048)
  }).catch((e) => { throw new Error(`wllama failed on ${model}: ${e.message} ${errors.join(' ')}`) })
  const t = r.timings
  console.log(JSON.stringify({
    load_ms: +r.load_ms.toFixed(1),
    pp: t.prompt_per_second,
    tg: t.predicted_per_second,
    prompt_tokens: t.prompt_n,
    tokens: t.predicted_n,
    version: r.version,
    threads: r.threads,
    multithread: r.multithread
  }))
} finally {
  await browser.close()
  server.close()
}
