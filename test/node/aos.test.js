// aos 2.0 compatibility of AOS.wasm under the real, unmodified npm @permaweb/ao-loader:
// handlers written for aos run unchanged (Send/Receive, msg.reply/forward, coroutines,
// the spawn message through Handlers, case-insensitive tags, the standard library
// modules, .crypto, a token process, a chatroom, an LLM answer in a handler).
// Run with ./run.sh aos.test.js. AOS_MODELS=dir overrides ../shared/models.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import nodeCrypto from 'node:crypto'
import { REPO, OWNER, OTHER, PROCESS, env, loader, fileWeaveDrive, dataDir } from './helpers.js'

const THIRD = 'THIRD-' + 't'.repeat(37)
const ORACLE = 'ORACLE-' + 'q'.repeat(36)
const MODELS = process.env.AOS_MODELS || path.join(REPO, '..', 'shared', 'models')
const S260K = path.join(MODELS, 'stories260K')
const data = dataDir({ model: path.join(S260K, 'stories260K.bin'), tok: path.join(S260K, 'tok512.bin') })
after(() => data.cleanup())
const lua = (name) => fs.readFileSync(path.join(REPO, 'lua', name), 'utf8')

let n = 0
const msg = ({ id, from = OWNER, owner, action, data = '', tags = [], target = PROCESS }) => ({
  Id: id || 'AOSMSG-' + String(++n).padStart(36, '0'),
  Target: target,
  Owner: owner || from,
  From: from,
  'Block-Height': '1000',
  Timestamp: String(1700000000000 + (++n) * 1000),
  Module: env.Module.Id,
  Tags: [...(action ? [{ name: 'Action', value: action }] : []), ...tags],
  Data: data
})
const tag = (m, name) => m.Tags.find((t) => t.name === name)?.value
const T = (name, value) => ({ name, value })

// A process under the loader: its Memory carried from one message to the next. One loader
// instance per process (an instance given Memory = null keeps its own last memory).
const spawn = async ({ data: bootData = '', tags = [] } = {}) => {
  const handle = await loader(fileWeaveDrive(data.dir))
  let memory = null
  const p = {
    async send (m) {
      const r = await handle(memory, m, env)
      memory = r.Memory
      return r
    },
    // a message that must fail: the loader throws the response; Memory stays as it was
    async fails (m) {
      try { await handle(memory, m, env) } catch (e) { return e }
      throw new Error('expected an Error result')
    },
    eval (code, opts = {}) { return p.send(msg({ action: 'Eval', data: code, ...opts })) },
    async value (code) {
      const r = await p.eval(code)
      assert.equal(r.Error, undefined, r.Error)
      return r.Output.data
    }
  }
  p.boot = await p.send(msg({ id: PROCESS, data: bootData, tags: [T('Type', 'Process'), ...tags] }))
  return p
}

test('the spawn message goes through Handlers (_boot runs On-Boot Data); a later message with the process id is handled', async () => {
  const p = await spawn({ data: 'Booted = "yes" print("booting")', tags: [T('On-Boot', 'Data')] })
  assert.equal(p.boot.Output.data, 'booting')
  // _boot ran once and is gone; only the module's own Inference and Dispute handlers are left
  assert.equal(await p.value('return Booted .. " " .. #Inbox .. " " .. table.concat(Handlers.names(), ",")'),
    'yes 0 Dispute-Clock,Inference,Dispute-Open,Bisect-Answer,Step-Inputs-Answer')
  // aos's own tests send every Eval with one Id; the process id as Id is not special later
  const r = await p.send(msg({ id: PROCESS, action: 'Eval', data: '1 + 41' }))
  assert.equal(r.Output.data, '42')
})

test('Send, case-insensitive tags, msg.reply, the New Message From line, the prompt', async () => {
  const p = await spawn()
  let r = await p.eval(`
    Send({ Target = "TEST", Data = { length = 1 } })
    Handlers.add("ping", Handlers.utils.hasMatchingTag("Action", "Ping"), function(msg)
      msg.reply({ Data = "pong", Seen = msg.Tags["Data-Protocol"] })
    end)`)
  assert.deepEqual(JSON.parse(r.Messages[0].Data), { length: 1 })
  assert.equal(tag(r.Messages[0], 'Content-Type'), 'application/json')
  r = await p.send(msg({ from: OTHER, tags: [T('action', 'Ping'), T('DATA_PROTOCOL', 'x'), T('Reference', '7')] }))
  assert.equal(r.Messages.length, 1)
  assert.equal(r.Messages[0].Target, OTHER)
  assert.equal(r.Messages[0].Data, 'pong')
  assert.equal(tag(r.Messages[0], 'Seen'), 'x')
  assert.equal(tag(r.Messages[0], 'X-Reference'), '7')
  r = await p.send(msg({ from: 'FRED', data: 'ping' }))
  assert.equal(r.Output.data, '\x1B[90mNew Message From \x1B[32mFRE...RED\x1B[90m: \x1B[90mData = \x1B[34mping\x1B[0m')
  assert.equal(r.Output.print, true)
  assert.match(r.Output.prompt, /aos-.*\[Inbox:.*1.*\].*> $/)
  // handler pipeline: "continue" runs on, "skip" does not run
  await p.eval(`
    Handlers.prepend("one", function() return "continue" end, function() print("one") end)
    Handlers.after("one").add("two", function() return 1 end, function() print("two") end)
    Handlers.after("two").add("three", function() return "skip" end, function() print("three") end)`)
  r = await p.send(msg({ from: 'FRED', data: 'again' }))
  assert.equal(r.Output.data, 'one\ntwo\n\x1B[90mNew Message From \x1B[32mFRE...RED\x1B[90m: \x1B[90mData = \x1B[34magain\x1B[0m')
  // Eval output: tables as aos prints them, os.time() in ms
  assert.equal(await p.value('return { 1, 2 }'), '{ \x1B[34m1\x1B[0m, \x1B[34m2\x1B[0m }')
  r = await p.send({ ...msg({ action: 'Eval', data: 'return os.time()' }), Timestamp: '1712345678901' })
  assert.equal(r.Output.data, '1712345678901')
})

test('errors as aos formats them; the process is unchanged after an Error', async () => {
  const p = await spawn()
  await p.eval('X = 1 Handlers.add("bad", "Bad", function() X = 2 print("partial") error("kaboom") end)')
  let e = await p.fails(msg({ action: 'Eval', data: 'print("before") X = 3 error("boom")' }))
  assert.equal(e.Error, 'before\n\x1B[31merror: eval:1: boom\x1B[0m')
  e = await p.fails(msg({ action: 'Bad', from: OTHER }))
  assert.match(e.Error, /error:\n.*handler 'bad': eval:1: kaboom/)
  assert.match(e.Output.data, /partial\n.*Error.* handling message/)
  assert.equal(await p.value('return X'), '1')
})

test('a token process driven by other wallets: Info, Balance, Transfer with notices, overdraft refused, Mint by the owner', async () => {
  const p = await spawn()
  await p.value(lua('examples/token.lua'))
  let r = await p.send(msg({ action: 'Info', from: OTHER }))
  assert.equal(tag(r.Messages[0], 'Ticker'), 'LLAMA')
  assert.equal(tag(r.Messages[0], 'Denomination'), '12')
  r = await p.send(msg({ action: 'Transfer', from: OWNER, tags: [T('Recipient', OTHER), T('Quantity', '2500'), T('X-Memo', 'hi')] }))
  assert.deepEqual(r.Messages.map((m) => [m.Target, tag(m, 'Action'), tag(m, 'Quantity'), tag(m, 'X-Memo')]),
    [[OWNER, 'Debit-Notice', '2500', 'hi'], [OTHER, 'Credit-Notice', '2500', 'hi']])
  // OTHER passes some on to THIRD, then overdraws
  r = await p.send(msg({ action: 'Transfer', from: OTHER, tags: [T('recipient', THIRD), T('quantity', '1000')] }))
  assert.equal(tag(r.Messages[1], 'Action'), 'Credit-Notice')
  assert.equal(r.Messages[1].Target, THIRD)
  r = await p.send(msg({ action: 'Transfer', from: OTHER, tags: [T('Recipient', THIRD), T('Quantity', '1501')] }))
  assert.equal(tag(r.Messages[0], 'Action'), 'Transfer-Error')
  assert.equal(tag(r.Messages[0], 'Error'), 'Insufficient Balance!')
  const bal = async (who) => (await p.send(msg({ action: 'Balance', from: who }))).Messages[0].Data
  assert.deepEqual([await bal(OWNER), await bal(OTHER), await bal(THIRD)], ['9999999999997500', '1500', '1000'])
  r = await p.send(msg({ action: 'Mint', from: THIRD, tags: [T('Quantity', '5')] }))
  assert.equal(tag(r.Messages[0], 'Action'), 'Mint-Error')
  r = await p.send(msg({ action: 'Mint', from: OWNER, tags: [T('Quantity', '123456789012345678901234567890')] }))
  assert.equal(r.Messages[0].Data, 'Successfully minted 123456789012345678901234567890')
  r = await p.send(msg({ action: 'Total-Supply', from: THIRD }))
  assert.equal(r.Messages[0].Data, '123456789012355678901234567890')
  r = await p.send(msg({ action: 'Balances', from: THIRD }))
  assert.equal(JSON.parse(r.Messages[0].Data)[THIRD], '1000')
})

test('a handler that Send(...).receive()s a reply arriving two messages later', async () => {
  const p = await spawn()
  await p.eval(`
    Handlers.add("ask", "Ask", function(msg)
      Pending = (Pending or 0) + 1
      local answer = Send({ Target = "${ORACLE}", Action = "Query", Data = msg.Data }).receive()
      Pending = Pending - 1
      msg.reply({ Action = "Answer", Data = msg.Data .. " = " .. answer.Data })
    end)`)
  let r = await p.send(msg({ action: 'Ask', from: OTHER, data: '6*7' }))
  assert.equal(r.Messages.length, 1)
  assert.equal(r.Messages[0].Target, ORACLE)
  const ref = tag(r.Messages[0], 'Reference')
  r = await p.send(msg({ action: 'Chatter', from: THIRD, data: 'in between' }))
  assert.equal(r.Messages.length, 0)
  assert.equal(await p.value('return Pending'), '1')
  r = await p.send(msg({ from: ORACLE, data: '42', tags: [T('X-Reference', ref)] }))
  assert.equal(r.Messages.length, 1)
  assert.equal(r.Messages[0].Target, OTHER)
  assert.equal(r.Messages[0].Data, '6*7 = 42')
  assert.equal(tag(r.Messages[0], 'Action'), 'Answer')
  assert.equal(await p.value('return Pending .. " " .. #Inbox .. " " .. #Handlers.coroutines'), '0 1 0')
})

test('a chatroom: Register and Broadcast to every member', async () => {
  const p = await spawn()
  await p.value(lua('examples/chatroom.lua'))
  for (const who of [OTHER, THIRD, ORACLE]) await p.send(msg({ action: 'Register', from: who }))
  const r = await p.send(msg({ action: 'Broadcast', from: THIRD, data: 'hello room' }))
  assert.deepEqual(r.Messages.map((m) => [m.Target, m.Data, tag(m, 'Broadcaster') || null]),
    [[OTHER, 'hello room', THIRD], [THIRD, 'hello room', THIRD], [ORACLE, 'hello room', THIRD],
      [THIRD, 'Broadcasted to 3 members', null]])
})

test('assignables: untrusted assignments are refused, assignable ones run', async () => {
  const p = await spawn()
  let r = await p.send(msg({ action: 'Eval', data: '2 + 2', target: 'NOT-THIS-PROCESS' }))
  assert.equal(r.Messages[0].Data, 'Assignment is not trusted by this process!')
  await p.eval('ao.addAssignable("thomas", { Name = "Thomas" })')
  r = await p.send(msg({ action: 'Eval', data: '2 + 2', target: 'NOT-THIS-PROCESS', tags: [T('Name', 'Thomas')] }))
  assert.equal(r.Output.data, '4')
  const e = await p.fails(msg({ action: 'Eval', data: 'ao.removeAssignable({})' }))
  assert.match(e.Error, /index MUST be a number/)
})

test('the standard library modules: .utils, .bint, .json, .base64, .pretty, .stringify, .dump', async () => {
  const p = await spawn()
  assert.equal(await p.value(`
    local utils = require(".utils")
    local bint = require(".bint")(256)
    local json = require(".json")
    local b64 = require(".base64")
    return table.concat({
      table.concat(utils.map(function(v) return v * 2 end)({ 1, 2, 3 }), ","),
      utils.reduce(function(a, v) return a + v end, 0, { 1, 2, 3 }),
      tostring(utils.includes(2, { 1, 2 })),
      tostring(bint("123456789012345678901234567890") * bint(1000) + 1),
      tostring(bint.ipow(2, 200) // bint.ipow(2, 190)),
      json.encode({ a = { 1, 2 } }),
      b64.encode("hello"), b64.decode("aGVsbG8="),
      require(".dump")({ x = 1 }),
      require(".pretty").tprint({ 1 }),
      tostring(require(".stringify").format({ k = "v" }):find("k", 1, true) ~= nil),
    }, "|")`),
  '2,4,6|6|true|123456789012345678901234567890001|1024|{"a":[1,2]}|aGVsbG8=|hello|{ x = 1 }|{ 1 }|true')
})

test('.crypto (native RustCrypto) gives the standard digests, HMAC, PBKDF2 and AES', async () => {
  const p = await spawn()
  const input = 'ao and the llama'
  const out = JSON.parse(await p.value(`
    local crypto = require(".crypto")
    local s = ${JSON.stringify(input)}
    local d = crypto.digest
    local key = crypto.utils.array.fromString("super_secret_key")
    return require("json").encode({
      md5 = d.md5(s).asHex(), sha1 = d.sha1(crypto.utils.stream.fromString(s)).asHex(),
      sha256 = d.sha2_256(s).asHex(), sha512 = d.sha2_512(s).asHex(),
      sha3_256 = d.sha3_256(s).asHex(), sha3_512 = d.sha3_512(s).asHex(),
      keccak256 = d.keccak256("").asHex(), blake2b = d.blake2b(s).asHex(),
      blake2b32 = d.blake2b("ao", 32).asHex(), blake2b32k = d.blake2b("ao", 32, "secret_key").asHex(),
      hmac1 = crypto.mac.createHmac(crypto.utils.stream.fromString("ao"), key).asHex(),
      hmac256 = crypto.mac.createHmac("ao", key, "sha256").asHex(),
      pbkdf2 = crypto.kdf.pbkdf2("password", "salt", 4, 16).asHex(),
      aes = crypto.cipher.aes.encrypt("ao", "super_secret_shh", "super_secret_shh").asHex(),
      back = crypto.utils.hex.hexToString(crypto.cipher.aes.decrypt(
        crypto.cipher.aes.encrypt(s, "0123456789abcdef0123456789abcdef", "iv", "CTR", 256).asHex(),
        "0123456789abcdef0123456789abcdef", "iv", "CTR", 256).asHex()),
      r1 = crypto.random(1, 6, "seed"), r2 = crypto.random(1, 6, "seed"),
    })`))
  const h = (alg) => nodeCrypto.createHash(alg).update(input).digest('hex')
  assert.equal(out.md5, h('md5'))
  assert.equal(out.sha1, h('sha1'))
  assert.equal(out.sha256, h('sha256'))
  assert.equal(out.sha512, h('sha512'))
  assert.equal(out.sha3_256, h('sha3-256'))
  assert.equal(out.sha3_512, h('sha3-512'))
  assert.equal(out.blake2b, h('blake2b512'))
  assert.equal(out.keccak256, 'c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470')
  // the values aos's crypto.md documents
  assert.equal(out.blake2b32, '7050811afc947ba7190bb3c0a7b79b4fba304a0de61d529c8a35bdcbbb5544f4')
  assert.equal(out.blake2b32k, '203c101980fdf6cf24d78879f2e3db86d73d91f7d60960b642022cd6f87408f8')
  assert.equal(out.pbkdf2, 'c4c21bf2bbf61541408ec2a49c89b9c6')
  assert.equal(out.aes, 'A3B9E6E1FBD9D46930E5F76807C84B8E')
  // RFC 2104 HMAC (as Node computes it)
  assert.equal(out.hmac1, nodeCrypto.createHmac('sha1', 'super_secret_key').update('ao').digest('hex'))
  assert.equal(out.hmac256, nodeCrypto.createHmac('sha256', 'super_secret_key').update('ao').digest('hex'))
  assert.equal(out.back.replace(/\0+$/, ''), input)
  assert.equal(out.r1, out.r2)
  assert.ok(out.r1 >= 1 && out.r1 <= 6)
})

test('mixing with the LLM: a handler answers with msg.reply({ Data = Llama.run(...) })', async () => {
  const p = await spawn()
  await p.value(`
    Llama.load("/data/${data.ids.model}", "/data/${data.ids.tok}")
    Handlers.add("Ask", Handlers.utils.hasMatchingTag("Action", "Ask"), function(msg)
      msg.reply({ Action = "Answer", Data = Llama.run(msg.Data, 24) })
    end)
    return "ready"`)
  const r = await p.send(msg({ action: 'Ask', from: OTHER, data: 'Once upon a time', tags: [T('Reference', '3')] }))
  assert.equal(r.Messages.length, 1)
  assert.equal(r.Messages[0].Target, OTHER)
  assert.equal(tag(r.Messages[0], 'X-Reference'), '3')
  const direct = await p.value('return Llama.run("Once upon a time", 24)')
  assert.ok(direct.length > 20, direct)
  assert.equal(r.Messages[0].Data, direct)
})
