-- llama.lua: the `Llama` module (aos-llama compatible API) over the native `__llama`
-- table that the Rust process module registers before this file runs.
--
-- Native contract (implemented in Rust, process/): every function raises a Lua error
-- (a string) on misuse or failure.
--   __llama.load(modelPath, tokenizerPath|nil, progressFn, logFn, context|nil) -> info table
--       Paths are "/data/<txid>". progressFn(fraction) is called with numbers in [0,1]
--       while the model is read; logFn(level, text) with level 1=error 2=warn 3=info
--       4=debug. Any previously loaded model is already stopped by Lua before this call.
--   __llama.set_prompt(text)   reset the context, tokenize text with BOS, evaluate it.
--   __llama.add(text)          tokenize text (no BOS) and append it to the context.
--   __llama.next() -> string|nil   generate one token: its text, or nil at the end
--                                  (end-of-sequence token or context full).
--   __llama.run(n) -> string   generate up to n tokens, return their text.
--   __llama.set_sampler(temperature, topp, seed)
--       temperature: float >= 0 (0 = greedy / argmax); topp: float in (0,1];
--       seed: integer >= 0. Resets the sampler's RNG. Accepted with or without a model
--       loaded; the setting persists across loads.
--   __llama.info() -> table {engine=, version=, model={format=, dim=, hidden_dim=,
--       n_layers=, n_heads=, n_kv_heads=, vocab_size=, seq_len=, ...} or nil,
--       position=, context_length=}
--   __llama.stop()             free the model (no error if none is loaded).
--   __llama.chat(messages, n) -> string   render the model's chat template for
--       messages ({ {role=, content=}, ... }), set it as the prompt, return the reply
--       (up to n tokens; it ends at an end-of-turn token).
--   __llama.save() -> string   the conversation state (KV rows in use, position, sampler).
--   __llama.restore(state)     put a saved state back (same model and context).
--
-- Lua API (see README.md): Llama.load, Llama.setPrompt, Llama.add, Llama.next,
-- Llama.run(n) / Llama.run(prompt, n), Llama.chat, Llama.save, Llama.restore,
-- Llama.stop, Llama.info, Llama.setSampler,
-- Llama.onLog, Llama.onProgress, Llama.logLevel, Llama.log, Llama.isLoaded.

local Llama = {
  _version = "1.0",
  _loaded = false,
  logLevel = 0, -- default: the default onLog prints nothing (Eval output stays clean)
  LOG_ERROR = 1, LOG_WARN = 2, LOG_INFO = 3, LOG_DEBUG = 4,
  DEFAULT_SAMPLER = { temperature = 0.0, topp = 0.9, seed = 0 },
}
Llama.sampler = { temperature = 0.0, topp = 0.9, seed = 0 }

local NOT_LOADED = "Llama: no model loaded; call Llama.load(...) first"

-- Raise msg located at the first caller outside this file (the user's code).
local THIS = debug and debug.getinfo and debug.getinfo(1, "S").source
local function fail(msg)
  if not THIS then error(msg, 0) end
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then error(msg, 0) end
    if info.what == "C" then error(msg, 0) end -- e.g. pcall: no Lua location to name
    if info.source ~= THIS then error(msg, level) end
    level = level + 1
  end
end

local function engine(fname)
  local e = rawget(_G, "__llama")
  if type(e) ~= "table" then
    fail("Llama." .. fname .. ": llama engine not available (no native __llama module in this build)")
  end
  return e
end

local function requireLoaded(fname)
  local e = engine(fname)
  if not Llama._loaded then fail(NOT_LOADED) end
  return e
end

-- call a native function, turning its error into "Llama.<fname>: <error>"
local function native(fname, f, ...)
  if type(f) ~= "function" then
    fail("Llama." .. fname .. ": the native engine does not provide this function")
  end
  local res = table.pack(pcall(f, ...))
  if not res[1] then
    local r = res[2]
    local m = type(r) == "string" and r or tostring(r)
    if m:sub(1, 5) ~= "Llama" then m = "Llama." .. fname .. ": " .. m end
    fail(m)
  end
  return table.unpack(res, 2, res.n)
end

local function dataPath(what, id)
  if type(id) ~= "string" then
    fail("Llama.load: " .. what .. " must be a txid or /data/<txid> string, got " .. type(id))
  end
  local tx = id:match("^/data/(.*)$") or id
  if #tx ~= 43 or not tx:find("^[A-Za-z0-9_%-]+$") then
    fail("Llama.load: invalid " .. what .. " id '" .. id
      .. "': expected a 43-character Arweave txid or /data/<txid>")
  end
  return "/data/" .. tx
end

-- Default callbacks (user-overridable).
function Llama.onLog(level, text)
  if type(level) == "number" and level <= (tonumber(Llama.logLevel) or 0) then
    print(text)
  end
end

function Llama.onProgress(fraction) end

function Llama.log(level, text)
  local fn = Llama.onLog
  if type(fn) == "function" then fn(level, text) end
end

local function progressCb(fraction)
  local fn = Llama.onProgress
  if type(fn) == "function" then fn(fraction) end
end

local function logCb(level, text)
  Llama.log(level, text)
end

function Llama.isLoaded() return Llama._loaded == true end

local function applySampler(e)
  local s = Llama.sampler
  native("setSampler", e.set_sampler, s.temperature, s.topp, s.seed)
end

-- Llama.load(model [, tokenizer] [, {context = N}])
function Llama.load(model, tokenizer, opts)
  if type(tokenizer) == "table" and opts == nil then tokenizer, opts = nil, tokenizer end
  local modelPath = dataPath("model", model)
  local tokPath = nil
  if tokenizer ~= nil then tokPath = dataPath("tokenizer", tokenizer) end
  local context = nil
  if opts ~= nil then
    if type(opts) ~= "table" then fail("Llama.load: options must be a table {context = N}, got " .. type(opts)) end
    for k in pairs(opts) do
      if k ~= "context" then fail("Llama.load: unknown option '" .. tostring(k) .. "' (expected context)") end
    end
    if opts.context ~= nil then
      context = type(opts.context) == "number" and math.tointeger(opts.context) or nil
      if not context or context < 1 then
        fail("Llama.load: context must be a positive integer, got " .. tostring(opts.context))
      end
    end
  end
  local e = engine("load")
  if Llama._loaded then
    -- free the old model first so two never share memory (on failure the host rolls
    -- the whole process back, old model included)
    native("load", e.stop)
    Llama._loaded = false
  end
  local info = native("load", e.load, modelPath, tokPath, progressCb, logCb, context)
  Llama._loaded = true
  Llama.model = modelPath
  Llama.tokenizer = tokPath
  applySampler(e)
  return info
end

local function checkText(fname, text)
  if type(text) == "number" then return tostring(text) end
  if type(text) ~= "string" then
    fail("Llama." .. fname .. ": text must be a string, got " .. type(text))
  end
  return text
end

function Llama.setPrompt(text)
  local e = requireLoaded("setPrompt")
  text = checkText("setPrompt", text)
  native("setPrompt", e.set_prompt, text)
end

function Llama.add(text)
  local e = requireLoaded("add")
  text = checkText("add", text)
  native("add", e.add, text)
end

function Llama.next()
  local e = requireLoaded("next")
  return native("next", e.next)
end

-- Llama.run(n) -> text, or Llama.run(prompt, n) -> text (sets the prompt first).
function Llama.run(a, b)
  local e = requireLoaded("run")
  local n = a
  if type(a) == "string" then
    native("run", e.set_prompt, a)
    n = b
  end
  local count = type(n) == "number" and math.tointeger(n) or nil
  if not count or count < 0 then
    fail("Llama.run: token count must be a non-negative integer, got " .. tostring(n))
  end
  return native("run", e.run, count)
end

-- Llama.chat(messages [, n]) -> the reply to messages ({ {role=, content=}, ... }),
-- through the model's own chat template; at most n tokens (default 256).
function Llama.chat(messages, n)
  local e = requireLoaded("chat")
  if type(messages) ~= "table" or #messages == 0 then
    fail("Llama.chat: messages must be a non-empty array of {role=, content=}, got " .. type(messages))
  end
  for i, m in ipairs(messages) do
    if type(m) ~= "table" or type(m.role) ~= "string" or type(m.content) ~= "string" then
      fail("Llama.chat: message " .. i .. " must be a table {role = string, content = string}")
    end
  end
  local count = 256
  if n ~= nil then
    count = type(n) == "number" and math.tointeger(n) or nil
    if not count or count < 0 then
      fail("Llama.chat: token count must be a non-negative integer, got " .. tostring(n))
    end
  end
  return native("chat", e.chat, messages, count)
end

-- Llama.save() -> string: the conversation so far (context, position, sampler);
-- Llama.restore(state) puts it back, e.g. in a later message.
function Llama.save()
  local e = requireLoaded("save")
  return native("save", e.save)
end

function Llama.restore(state)
  local e = requireLoaded("restore")
  if type(state) ~= "string" then fail("Llama.restore: state must be the string Llama.save() returned, got " .. type(state)) end
  native("restore", e.restore, state)
end

function Llama.stop()
  local e = engine("stop")
  native("stop", e.stop)
  Llama._loaded = false
  Llama.model = nil
  Llama.tokenizer = nil
end

function Llama.info()
  local e = engine("info")
  return native("info", e.info)
end

-- Trace commitments (see llama/src/trace.rs): Llama.trace(true) records every sampled
-- token from the next prompt on; Llama.traceRoot() -> hex Merkle root, steps recorded,
-- tokens generated (steps without the end token).
function Llama.trace(enable)
  local e = engine("trace")
  native("trace", e.trace, enable ~= false)
end

function Llama.traceRoot()
  local e = engine("traceRoot")
  return native("traceRoot", e.trace_root)
end

-- Version 2 step commitments (llama/src/trace.rs): Llama.stepRoot() -> hex Merkle root
-- over every layer of every position and every sampling step since the prompt, and the
-- number of entries (nil, 0 when tracing is off).
function Llama.stepRoot()
  local e = engine("stepRoot")
  return native("stepRoot", e.step_root)
end

-- What an arbiter needs (llama/src/dispute.rs), on the loaded model:
--   Llama.dispute.layout(prompt, leaves) -> prompt tokens, sampled tokens, layers
--   Llama.dispute.needs(prompt, leaves, index) -> { entry indexes to open }, index
--     whose residual stream is needed (or nil), "position p, layer l" text
--   Llama.dispute.check(prompt, sampler, leaves, index, rootHex, openings) ->
--     { leaf = hex, slot =, position =, layer = | sample =, token = } (raises when
--     the openings do not prove what is needed)
--   Llama.dispute.lengthNeeds(prompt, leaves, maxTokens, index | nil) -> the head
--     entry to open for a length challenge, or nil and why the claim is malformed
--   Llama.dispute.checkLength(prompt, leaves, maxTokens, index, rootHex, openings) ->
--     { holds = bool, reason =, slot =, position =, token = } (raises when the
--     openings do not prove the entry)
--   Llama.dispute.node(leftHex, rightHex) -> the Merkle node over two hex hashes
Llama.dispute = {}
function Llama.dispute.layout(prompt, leaves)
  local e = requireLoaded("dispute.layout")
  return native("dispute.layout", e.dispute_layout, checkText("dispute.layout", prompt), leaves)
end
function Llama.dispute.needs(prompt, leaves, index)
  local e = requireLoaded("dispute.needs")
  return native("dispute.needs", e.dispute_needs, checkText("dispute.needs", prompt), leaves, index)
end
function Llama.dispute.check(prompt, sampler, leaves, index, root, openings)
  local e = requireLoaded("dispute.check")
  return native("dispute.check", e.dispute_check, checkText("dispute.check", prompt), sampler,
    leaves, index, root, openings)
end
function Llama.dispute.lengthNeeds(prompt, leaves, maxTokens, index)
  local e = requireLoaded("dispute.lengthNeeds")
  return native("dispute.lengthNeeds", e.dispute_length_needs, checkText("dispute.lengthNeeds", prompt),
    leaves, maxTokens, index)
end
function Llama.dispute.checkLength(prompt, leaves, maxTokens, index, root, openings)
  local e = requireLoaded("dispute.checkLength")
  return native("dispute.checkLength", e.dispute_check_length, checkText("dispute.checkLength", prompt),
    leaves, maxTokens, index, root, openings)
end
function Llama.dispute.node(left, right)
  local e = engine("dispute.node")
  return native("dispute.node", e.trace_node, left, right)
end

-- SHA-256 of a string, as lowercase hex.
function Llama.sha256(data)
  local e = engine("sha256")
  return native("sha256", e.sha256, checkText("sha256", data))
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- Llama.setSampler{temperature=, topp=, seed=}: fields not given keep their current
-- value; Llama.setSampler() resets to greedy (temperature 0, topp 0.9, seed 0).
-- Returns a copy of the active settings.
function Llama.setSampler(opts, topp, seed)
  if type(opts) == "number" then opts = { temperature = opts, topp = topp, seed = seed } end
  local new
  if opts == nil then
    new = { temperature = 0.0, topp = 0.9, seed = 0 }
  elseif type(opts) ~= "table" then
    fail("Llama.setSampler: expected a table {temperature=, topp=, seed=}, got " .. type(opts))
  else
    for k in pairs(opts) do
      if k ~= "temperature" and k ~= "topp" and k ~= "seed" then
        fail("Llama.setSampler: unknown option '" .. tostring(k)
          .. "' (expected temperature, topp, seed)")
      end
    end
    new = { temperature = Llama.sampler.temperature, topp = Llama.sampler.topp,
            seed = Llama.sampler.seed }
    if opts.temperature ~= nil then
      local t = opts.temperature
      if type(t) ~= "number" or not finite(t) or t < 0 then
        fail("Llama.setSampler: temperature must be a finite number >= 0 (0 = greedy), got "
          .. tostring(t))
      end
      new.temperature = t + 0.0
    end
    if opts.topp ~= nil then
      local p = opts.topp
      if type(p) ~= "number" or not finite(p) or p <= 0 or p > 1 then
        fail("Llama.setSampler: topp must be a number in (0, 1], got " .. tostring(p))
      end
      new.topp = p + 0.0
    end
    if opts.seed ~= nil then
      local s = type(opts.seed) == "number" and math.tointeger(opts.seed) or nil
      if not s or s < 0 then
        fail("Llama.setSampler: seed must be a non-negative integer, got " .. tostring(opts.seed))
      end
      new.seed = s
    end
  end
  local e = engine("setSampler")
  native("setSampler", e.set_sampler, new.temperature, new.topp, new.seed)
  Llama.sampler = new
  return { temperature = new.temperature, topp = new.topp, seed = new.seed }
end

package.loaded["llama"] = Llama
package.loaded[".llama"] = Llama
_G.Llama = Llama
return Llama
