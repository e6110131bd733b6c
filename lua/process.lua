-- process.lua: the AOS process entry point (Lua 5.3). Defines the global
-- `handle(msgJson, envJson) -> resultJson` that the Rust module calls per message.
--
-- Written for this project from aos's documented behaviour. Loaded last, after
-- json.lua, handlers.lua, ao.lua and llama.lua.
--
-- Result JSON:
--   ok:  {"ok":true,"response":{"Output":{"data":"...","prompt":"aos> "},
--         "Messages":[...],"Spawns":[...],"Assignments":[...]}}
--   err: {"ok":false,"response":{"Error":"<message>","Output":{"data":"...","prompt":"aos> "}}}
-- `handle` never raises. Any Lua error while processing a message (bad input JSON,
-- a handler, Eval code, a rejected Eval) gives ok=false; the hosts then keep the
-- memory from before the message, so the process is exactly as it was.
--
-- Per message:
--   1. decode msg/env; ao.init(env); ao.normalize(msg) (tags lifted into fields,
--      msg.Tags a name->value map, msg.TagArray the list); msg.From defaults to
--      msg.Owner; Timestamp / Block-Height become numbers when numeric.
--   2. Owner: on the spawn message (msg.Id == env.Process.Id) Owner = msg.Owner if not
--      set yet; otherwise, while unset, Owner = env.Process.Owner.
--   3. if the process has Authority tags and msg.From ~= msg.Owner (a message relayed
--      from another process), the message is not processed unless ao.isTrusted(msg)
--      (the sender gets "Message is not trusted by this process!"); an assignment
--      (Target ~= ao.id) is not processed unless ao.isAssignable(msg) (the sender gets
--      "Assignment is not trusted by this process!").
--   4. Action=Eval: runs msg.Data as Lua (chunk name "eval") only if msg.From == Owner.
--      An Eval from anyone else is rejected with an Error (the code does not run) and
--      is not passed to Handlers.
--   5. anything else, the spawn message included, goes to Handlers.evaluate: the
--      one-shot "_boot" handler takes the spawn message (Type=Process from the owner) and
--      runs its Data (On-Boot=Data) or the file /data/<On-Boot txid>; the default handler
--      keeps unhandled messages in Inbox.

local json = require("json")
local ao = require("ao")
local Handlers = require("handlers")
local stringify = require(".stringify")

---------------------------------------------------------------------------
-- Output collection: print() appends a line; Output.data is the lines joined with "\n".
---------------------------------------------------------------------------
local outputLines = {}
local currentIsEval = false

-- print: tables as the aos console shows them (stringify.format), other values with
-- tostring; several arguments joined by tabs.
local function tostringAll(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do
    local v = (select(i, ...))
    if type(v) == "table" then
      local ok, text = pcall(stringify.format, v)
      parts[i] = ok and text or tostring(v)
    else
      parts[i] = tostring(v)
    end
  end
  return table.concat(parts, "\t")
end

print = function(...)
  outputLines[#outputLines + 1] = tostringAll(...)
end

Version = Version or "2.0-compatible"
Errors = Errors or {}

-- aos's prompt: Name@aos-<version>[Inbox:N]>
function Prompt()
  local c = Colors
  return c.green .. tostring(Name or "aos") .. c.gray .. "@" .. c.blue .. "aos-" .. tostring(Version)
    .. c.gray .. "[Inbox:" .. c.red .. tostring(#Inbox) .. c.gray .. "]" .. c.reset .. "> "
end

---------------------------------------------------------------------------
-- Determinism: time and randomness
---------------------------------------------------------------------------
-- os.time() returns the current message's Timestamp in milliseconds, as aos does (an
-- integer; before any timestamped message the last one seen, or 0). os.time(t) with a
-- table is Lua's normal conversion (seconds). os.date() without a time formats the
-- current Timestamp // 1000 (seconds).
-- os.exit is disabled (it would end the module instance).
local c_time, c_date = os.time, os.date
CurrentTimestamp = CurrentTimestamp or 0 -- ms

local function nowMs()
  local ms = tonumber(CurrentTimestamp) or 0
  return math.tointeger(ms) or math.tointeger(math.floor(ms)) or 0
end
os.time = function(t)
  if t ~= nil then return c_time(t) end
  return nowMs()
end
os.date = function(fmt, t)
  if t == nil then t = nowMs() // 1000 end
  return c_date(fmt or "%c", t)
end
os.exit = function()
  error("os.exit is not available in an AO process", 2)
end

-- math.random: a pure-Lua xoshiro256** generator whose state lives in the Lua state
-- (so in linear memory: it carries over between messages and rolls back with them).
-- It gives the same numbers on every host. Initially seeded with 0; on the spawn
-- message it is reseeded from a hash of the process Id, so each process has its own
-- (still reproducible) sequence. math.randomseed(x) reseeds. Lua 5.3 argument rules.
local rngState = { 0, 0, 0, 0 }

local function rotl(x, n) return (x << n) | (x >> (64 - n)) end

local function nextRand()
  local s = rngState
  local s0, s1, s2, s3 = s[1], s[2], s[3], s[4]
  local result = rotl(s1 * 5, 7) * 9
  local t = s1 << 17
  s2 = s2 ~ s0
  s3 = s3 ~ s1
  s1 = s1 ~ s2
  s0 = s0 ~ s3
  s2 = s2 ~ t
  s3 = rotl(s3, 45)
  s[1], s[2], s[3], s[4] = s0, s1, s2, s3
  return result
end

local function seedRand(n)
  rngState[1], rngState[2], rngState[3], rngState[4] = n, 0xff, 0, 0
  for _ = 1, 16 do nextRand() end
end

local function hashString(str)
  local h = -3750763034362895579 -- FNV-1a 64-bit offset basis (0xcbf29ce484222325)
  for i = 1, #str do
    h = (h ~ str:byte(i)) * 1099511628211
  end
  return h
end

math.randomseed = function(x)
  local n
  if type(x) == "string" then n = hashString(x)
  elseif type(x) == "number" then
    n = math.tointeger(x) or string.unpack("<i8", string.pack("<d", x))
  elseif x == nil then n = 0
  else error("bad argument #1 to 'randomseed' (number expected, got " .. type(x) .. ")", 2) end
  seedRand(n)
end

local function toInt(x, argn)
  if type(x) ~= "number" then
    error("bad argument #" .. argn .. " to 'random' (number expected, got " .. type(x) .. ")", 3)
  end
  local n = math.tointeger(x)
  if not n then error("bad argument #" .. argn .. " to 'random' (number has no integer representation)", 3) end
  return n
end

-- uniform integer in [0, n] (n taken as unsigned)
local function project(ran, n)
  if n & (n + 1) == 0 then return ran & n end
  local lim = n
  lim = lim | (lim >> 1); lim = lim | (lim >> 2); lim = lim | (lim >> 4)
  lim = lim | (lim >> 8); lim = lim | (lim >> 16); lim = lim | (lim >> 32)
  ran = ran & lim
  while math.ult(n, ran) do ran = nextRand() & lim end
  return ran
end

math.random = function(...)
  local nargs = select("#", ...)
  local rv = nextRand()
  if nargs == 0 then
    return (rv >> 11) * (0.5 ^ 53)
  end
  local low, up
  if nargs == 1 then
    low, up = 1, toInt((...), 1)
  elseif nargs == 2 then
    local a, b = ...
    low, up = toInt(a, 1), toInt(b, 2)
  else
    error("wrong number of arguments to 'random'", 2)
  end
  if low > up then error("bad argument #" .. nargs .. " to 'random' (interval is empty)", 2) end
  return low + project(rv, up - low)
end

seedRand(0)

---------------------------------------------------------------------------
-- Value formatting for Eval results
---------------------------------------------------------------------------
local function isIdent(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end

local function dump(v, indent, seen)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t ~= "table" then return tostring(v) end
  if seen[v] then return "<cycle>" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  if #keys == 0 then seen[v] = nil return "{}" end
  local inner = indent .. "  "
  local parts = {}
  local n = #v
  for _, k in ipairs(keys) do
    local kv
    if math.type(k) == "integer" and k >= 1 and k <= n then
      kv = dump(v[k], inner, seen)
    elseif isIdent(k) then
      kv = k .. " = " .. dump(v[k], inner, seen)
    else
      kv = "[" .. dump(k, inner, seen) .. "] = " .. dump(v[k], inner, seen)
    end
    parts[#parts + 1] = inner .. kv
  end
  seen[v] = nil
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

-- strings as is, numbers/booleans/nil with tostring, tables as the aos console shows
-- them (stringify.format: colored, keys sorted); functions etc. with tostring.
local function formatValue(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "table" then
    local mt = getmetatable(v)
    if type(mt) == "table" and mt.__tostring then return tostring(v) end
    local ok, s = pcall(stringify.format, v)
    if ok then return s end
    return dump(v, "", {})
  end
  return tostring(v)
end
_G.FormatValue = formatValue

---------------------------------------------------------------------------
-- Eval
---------------------------------------------------------------------------
local function evalCode(code)
  if type(code) ~= "string" then
    error("Eval: message Data must be Lua source text, got " .. type(code), 0)
  end
  -- Expressions first ("1 + 1" returns 2), then statements. The expression form packs
  -- its values instead of `return <code>` so that the user's calls are not tail calls
  -- and their errors are located in "eval:<line>".
  local fn = load("local __pack = ... return __pack(" .. code .. "\n)", "=eval", "t")
  local isExpr = fn ~= nil
  if not fn then
    local err
    fn, err = load(code, "=eval", "t")
    if not fn then error(err, 0) end
  end
  -- called through pcall so that an error raised by a function the chunk tail-calls
  -- (`return Llama.run(10)`) names no misleading location in this file
  local packed
  if isExpr then
    local okCall, valsOrErr = pcall(fn, table.pack)
    if not okCall then error(valsOrErr, 0) end
    packed = table.pack(true, table.unpack(valsOrErr, 1, valsOrErr.n))
  else
    packed = table.pack(pcall(fn))
  end
  if not packed[1] then error(packed[2], 0) end
  local results = { n = packed.n - 1 }
  for i = 2, packed.n do results[i - 1] = packed[i] end
  if results.n == 0 or (results.n == 1 and results[1] == nil) then return end
  local parts = {}
  for i = 1, results.n do parts[i] = formatValue(results[i]) end
  outputLines[#outputLines + 1] = table.concat(parts, "\t")
end

---------------------------------------------------------------------------
-- Messages
---------------------------------------------------------------------------
-- msg.reply(r): r (a table of fields, or a string/number as Data) sent to the message's
-- Reply-To, else r.Target, else From; X-Reference = the message's X-Reference or
-- Reference (so a reply can be awaited with .receive()); X-Origin carried along.
-- msg.forward(target [, fields]): the message's Data and user tags, overridden by
-- fields, sent to target with Reply-To = its Reply-To or From, X-Reference and X-Origin.
local FORWARD_SKIP = {
  Id = true, Signature = true, Owner = true, Target = true, Anchor = true, From = true,
  ["Forwarded-By"] = true, Tags = true, TagArray = true, Epoch = true, Nonce = true,
  Timestamp = true, ["Block-Height"] = true, ["Hash-Chain"] = true, Cron = true,
  reply = true, forward = true, Module = true, ["Data-Protocol"] = true, Variant = true,
  Type = true, Reference = true, ["Pushed-For"] = true, ["From-Process"] = true,
  ["From-Module"] = true,
}

local function addReply(msg)
  msg.reply = function(r)
    if type(r) == "string" or type(r) == "number" then r = { Data = r } end
    if type(r) ~= "table" then error("msg.reply: expected a string or a table, got " .. type(r), 2) end
    local out = {}
    for k, v in pairs(r) do out[k] = v end
    out.Target = msg["Reply-To"] or out.Target or msg.From
    if out["X-Reference"] == nil then out["X-Reference"] = msg["X-Reference"] or msg.Reference end
    if out["X-Origin"] == nil then out["X-Origin"] = msg["X-Origin"] end
    return ao.send(out)
  end
  msg.forward = function(target, fields)
    if type(target) ~= "string" then error("msg.forward: target must be a process id string", 2) end
    local out = {}
    for k, v in pairs(msg) do
      if type(k) == "string" and not FORWARD_SKIP[k] and type(v) ~= "function" then out[k] = v end
    end
    for k, v in pairs(fields or {}) do out[k] = v end
    out.Target = target
    out["Reply-To"] = msg["Reply-To"] or msg.From
    out["X-Reference"] = msg["X-Reference"] or msg.Reference
    out["X-Origin"] = msg["X-Origin"] or msg.From
    return ao.send(out)
  end
end

-- Globals as aos 2 has them.
function Send(msg) return ao.send(msg) end
function Spawn(module, msg) return ao.spawn(module, msg) end
function Assign(a) return ao.assign(a) end
function Receive(pattern) return Handlers.receive(pattern) end

-- The boot handler: the spawn message (Type=Process, from the owner) runs its Data
-- (On-Boot=Data) or the Lua file /data/<On-Boot txid> (through WeaveDrive).
local function bootCode(msg)
  local onBoot = msg["On-Boot"]
  if onBoot == "Data" then
    if type(msg.Data) == "string" and msg.Data ~= "" then return msg.Data end
    return nil
  end
  if type(onBoot) == "string" and ao.isTxid(onBoot) then
    if type(__weavedrive) ~= "table" then error("On-Boot: WeaveDrive is not available", 0) end
    local ok, code = pcall(__weavedrive.read, "/data/" .. onBoot)
    if not ok then error("On-Boot: cannot load /data/" .. onBoot .. ": " .. tostring(code), 0) end
    return code
  end
  return nil
end

Handlers.once("_boot", function(msg)
  return msg.Tags.Type == "Process" and msg.From == Owner
end, function(msg)
  local code = bootCode(msg)
  if code then evalCode(code) end
end)

local function numeric(v)
  if type(v) == "string" then
    local n = tonumber(v)
    if n then return math.tointeger(n) or n end
  end
  return v
end

local function processMessage(msgJson, envJson)
  if type(msgJson) ~= "string" then error("handle: message must be a JSON string", 0) end
  local okMsg, msg = pcall(json.decode, msgJson)
  if not okMsg then error("handle: invalid message JSON: " .. tostring(msg), 0) end
  if getmetatable(msg) ~= json.object_mt then error("handle: message JSON must be an object", 0) end
  local env = {}
  if type(envJson) == "string" and envJson:find("%S") then
    local okEnv
    okEnv, env = pcall(json.decode, envJson)
    if not okEnv then error("handle: invalid env JSON: " .. tostring(env), 0) end
    if env == nil then env = json.object() end -- "null"
    if getmetatable(env) ~= json.object_mt then error("handle: env JSON must be an object", 0) end
  end
  ao.init(env)
  ao.normalize(msg)
  if msg.From == nil then msg.From = msg.Owner end
  if msg.Tags["Content-Type"] == "application/json" and type(msg.Data) == "string" then
    local okData, data = pcall(json.decode, msg.Data)
    if okData and type(data) == "table" then msg.Data = data end
  end
  msg.Timestamp = numeric(msg.Timestamp)
  msg["Block-Height"] = numeric(msg["Block-Height"])
  if type(msg.Timestamp) == "number" then CurrentTimestamp = msg.Timestamp end
  addReply(msg)

  local process = type(env.Process) == "table" and env.Process or {}
  local isSpawn = msg.Id ~= nil and process.Id ~= nil and msg.Id == process.Id
  if isSpawn and Owner == nil then Owner = msg.Owner end
  if Owner == nil and type(process.Owner) == "string" then Owner = process.Owner end
  if Name == nil then
    local names = {}
    for _, nv in ipairs(ao._eachTag(process.Tags)) do
      if nv[1] == "Name" then names[#names + 1] = nv[2] end
    end
    Name = type(names[1]) == "string" and names[1] or "aos"
  end
  if isSpawn and not Spawned then
    Spawned = true
    math.randomseed(tostring(process.Id))
  end

  if msg.From ~= msg.Owner and not ao.isTrusted(msg) then
    if msg.From ~= ao.id then ao.send({ Target = msg.From, Data = "Message is not trusted by this process!" }) end
    print("Message is not trusted! From: " .. tostring(msg.From) .. " - Owner: " .. tostring(msg.Owner))
    return
  end
  if ao.isAssignment(msg) and not ao.isAssignable(msg) then
    if msg.From ~= ao.id then ao.send({ Target = msg.From, Data = "Assignment is not trusted by this process!" }) end
    print("Assignment is not trusted! From: " .. tostring(msg.From) .. " - Owner: " .. tostring(msg.Owner))
    return
  end

  if msg.Action == "Eval" then
    currentIsEval = true
    if Owner ~= nil and msg.From == Owner then
      -- in a coroutine, like a handler, so Eval code can Receive(...) too
      Handlers.spawnCoroutine(nil, evalCode, msg.Data)
    else
      error("Eval rejected: only the process owner may Eval (From " .. tostring(msg.From) .. ")", 0)
    end
    return
  end

  Handlers.evaluate(msg, env)
end

local function errorText(e)
  if type(e) == "string" then return e end
  if type(e) == "table" then
    local mt = getmetatable(e)
    if type(mt) == "table" and mt.__tostring then return tostring(e) end
    local ok, s = pcall(json.encode, e)
    if ok then return s end
  end
  return tostring(e)
end

local FALLBACK = '{"ok":false,"response":{"Error":"internal error: could not encode the result","Output":{"data":"","prompt":"aos> "}}}'

function handle(msgJson, envJson)
  outputLines = {}
  currentIsEval = false
  ao.clearOutbox()
  local ok, err = xpcall(processMessage, function(e)
    local okText, text = pcall(errorText, e)
    return okText and text or "error (unprintable error object)"
  end, msgJson, envJson)

  local okPrompt, prompt = pcall(Prompt)
  if not okPrompt or type(prompt) ~= "string" then prompt = "aos> " end
  local printed = table.concat(outputLines, "\n")
  local output = { data = printed, prompt = prompt }
  if not currentIsEval then output.print = true end
  outputLines = {}
  if not ok then
    -- as aos formats them: an Eval's error after what it printed; a handler's error
    -- under an "Error handling message" notice
    local c = Colors
    if currentIsEval then
      err = (printed ~= "" and printed .. "\n" or "") .. c.red .. "error: " .. err .. c.reset
    else
      output.data = (printed ~= "" and printed .. "\n" or "") .. c.red .. "Error" .. c.gray
        .. " handling message " .. c.reset .. "\n" .. c.green .. err .. c.reset
      err = (printed ~= "" and printed .. "\n\n" or "") .. c.red .. "error:\n" .. c.reset .. err
    end
  end

  local result
  if ok then
    result = { ok = true, response = {
      Output = output,
      Messages = ao.outbox.Messages,
      Spawns = ao.outbox.Spawns,
      Assignments = ao.outbox.Assignments,
    } }
  else
    result = { ok = false, response = { Error = err, Output = output } }
  end
  local encOk, encoded = pcall(json.encode, result)
  if not encOk then
    -- e.g. a queued message holds something JSON cannot encode
    local encOk2, encoded2 = pcall(json.encode, { ok = false, response = {
      Error = "could not encode the result: " .. tostring(encoded), Output = output } })
    encoded = encOk2 and encoded2 or FALLBACK
  end
  ao.clearOutbox()
  return encoded
end

package.loaded["process"] = { handle = handle }
package.loaded[".process"] = package.loaded["process"]
