-- ao.lua: the `ao` module of the AOS process runtime (Lua 5.3).
--
-- Written for this project from aos's documented behaviour.
--
-- ao.init(env)          sets ao.env, ao.id (Process.Id), ao._module (Module.Id) and
--                       ao.authorities (the process's "Authority" tags, comma-separated
--                       values allowed).
-- ao.send(msg)          queues an outgoing message. msg.Target (string) is required.
--                       msg.Data: a string (a table is JSON-encoded and gets
--                       Content-Type: application/json unless given; numbers and
--                       booleans become text; nil becomes "").
--                       msg.Anchor: optional, defaults to the 32-digit reference.
--                       msg.Tags: a map {name = value} or a list {{name=, value=}, ...}.
--                       Every other field becomes a tag (Action = "X" -> tag Action).
--                       Tags come out as: Data-Protocol=ao, Variant=ao.TN.1,
--                       Type=Message, Reference=<counter>, then the fields (sorted by
--                       name), then msg.Tags (list order, or sorted by name for a map).
--                       The names Data-Protocol, Variant, Type and Reference are
--                       reserved: user tags with those names are dropped.
--                       Returns the queued message {Target, Data, Anchor, Tags}.
-- ao.spawn(module, msg) queues a process spawn of module (a 43-character txid):
--                       {Data, Anchor, Tags} with Type=Process, Module, From-Process,
--                       From-Module, Reference tags plus the user's.
-- ao.assign{Processes = {...}, Message = id} queues an assignment.
-- ao.outbox             {Messages, Spawns, Assignments} of the current message.
-- ao.reference          the last Reference used (persists across messages).
-- ao.normalize(msg)     lifts tags into fields (used by the process).
-- ao.isTrusted(msg)     true if no authorities are configured, or msg.From /
--                       msg.Owner is one of them.
-- The message returned by ao.send has .receive([from]) (wait, inside a handler, for the
-- reply: From = from or Target, X-Reference = its Reference) and .onReply(fn) (a
-- one-shot handler for that reply); ao.spawn's has .receive() / .onReply(fn) for the
-- "Spawned" notice (Action = Spawned, X-Reference = its Reference).
-- Assignments (aos 2): ao.addAssignable([name,] spec), ao.removeAssignable(name | index),
-- ao.assignables ({name=, pattern=} list), ao.isAssignment(msg) (Target ~= ao.id),
-- ao.isAssignable(msg) (some assignable's spec matches).

local json = require("json")

local ao = {
  _version = "1.0",
  id = "",
  _module = "",
  env = {},
  authorities = {},
  reference = 0,
  assignables = {},
  outbox = { Messages = {}, Spawns = {}, Assignments = {} },
}

local RESERVED_TAGS = { ["Data-Protocol"] = true, Variant = true, Type = true, Reference = true }

-- message fields that are never overwritten by tags
ao.STANDARD_FIELDS = {
  Id = true, Signature = true, Data = true, Owner = true, Target = true, Anchor = true,
  From = true, ["Forwarded-By"] = true, Tags = true, TagArray = true, Epoch = true,
  Nonce = true, Timestamp = true, ["Block-Height"] = true, ["Hash-Chain"] = true,
  Cron = true, reply = true, forward = true,
}

local function tagValue(name, v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" then return tostring(v) end
  error("tag '" .. tostring(name) .. "': value must be a string, number or boolean, got " .. t, 0)
end

-- Iterate a tag list ({{name,value}...}) or map ({name=value}) as (name, value) pairs.
local function eachTag(tags)
  local list = {}
  if type(tags) ~= "table" then return list end
  if #tags > 0 or next(tags) == nil then
    for _, tag in ipairs(tags) do
      if type(tag) == "table" and tag.name ~= nil then
        list[#list + 1] = { tostring(tag.name), tag.value }
      end
    end
  else
    local names = {}
    for k in pairs(tags) do names[#names + 1] = tostring(k) end
    table.sort(names)
    for _, k in ipairs(names) do list[#list + 1] = { k, tags[k] } end
  end
  return list
end
ao._eachTag = eachTag

local function getTag(tags, wanted)
  local found = {}
  for _, nv in ipairs(eachTag(tags)) do
    if nv[1] == wanted then found[#found + 1] = nv[2] end
  end
  return found
end

function ao.init(env)
  env = type(env) == "table" and env or {}
  ao.env = env
  local process = type(env.Process) == "table" and env.Process or {}
  local module = type(env.Module) == "table" and env.Module or {}
  if type(process.Id) == "string" then ao.id = process.Id end
  if type(module.Id) == "string" then ao._module = module.Id end
  local auths = {}
  for _, v in ipairs(getTag(process.Tags, "Authority")) do
    for a in tostring(v):gmatch("[^,%s]+") do auths[#auths + 1] = a end
  end
  ao.authorities = auths
end

function ao.clearOutbox()
  ao.outbox = { Messages = {}, Spawns = {}, Assignments = {} }
end

function ao.isTrusted(msg)
  if #ao.authorities == 0 then return true end
  for _, a in ipairs(ao.authorities) do
    if msg.From == a or msg.Owner == a then return true end
  end
  return false
end

-- A tag name as aos 2 normalises it: "_" -> "-", then Title-Case per word
-- ("action" -> "Action", "DATA_PROTOCOL" -> "Data-Protocol", "x-reference" -> "X-Reference").
function ao.normalizeTagName(name)
  return (tostring(name):gsub("_", "-"):lower():gsub("%f[%w]%l", string.upper))
end

-- Lift tags into fields: msg.TagArray keeps the list as sent, msg.Tags becomes a map
-- under normalised names (the last of repeated names wins), and each tag becomes
-- msg[name] unless it is a standard message field or already set.
function ao.normalize(msg)
  local list = msg.Tags
  if type(list) ~= "table" then list = {} end
  local arr, map = {}, {}
  for _, nv in ipairs(eachTag(list)) do
    local name, value = nv[1], nv[2]
    arr[#arr + 1] = { name = name, value = value }
    map[ao.normalizeTagName(name)] = value
  end
  msg.TagArray = arr
  msg.Tags = map
  for _, t in ipairs(arr) do
    local name = ao.normalizeTagName(t.name)
    if not ao.STANDARD_FIELDS[name] and msg[name] == nil then
      msg[name] = map[name]
    end
  end
  return msg
end

---------------------------------------------------------------------------
-- Assignments
---------------------------------------------------------------------------
function ao.addAssignable(...)
  local n = select("#", ...)
  local name, spec
  if n == 1 then spec = ... else name, spec = ... end
  if n > 1 and type(name) ~= "string" then error("MatchSpec name MUST be a string", 2) end
  if name then
    for _, a in ipairs(ao.assignables) do
      if a.name == name then a.pattern = spec return end
    end
  end
  table.insert(ao.assignables, { name = name, pattern = spec })
end

function ao.removeAssignable(key)
  local idx
  if type(key) == "string" then
    for i, a in ipairs(ao.assignables) do if a.name == key then idx = i end end
  elseif math.type(key) == "integer" then
    idx = key
  else
    error("index MUST be a number", 2)
  end
  if idx and ao.assignables[idx] then table.remove(ao.assignables, idx) end
end

function ao.isAssignment(msg)
  return type(msg.Target) == "string" and ao.id ~= "" and msg.Target ~= ao.id
end

function ao.isAssignable(msg)
  local utils = require(".utils")
  for _, a in ipairs(ao.assignables) do
    local r = utils.matchesSpec(msg, a.pattern)
    if r and r ~= 0 and r ~= "skip" then return true end
  end
  return false
end

-- The reply to a message: a one-shot handler, or (inside a handler) a wait.
local function replyPattern(from, ref)
  return { From = from, ["X-Reference"] = tostring(ref) }
end

local function withReceive(out, from, ref, extra)
  local function pattern(f)
    local p = replyPattern(f or from, ref)
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end
  out.onReply = function(fn)
    return Handlers.once(pattern(), fn)
  end
  out.receive = function(f)
    return Handlers.receive(pattern(f))
  end
  return out
end

local function nextReference()
  ao.reference = (math.tointeger(ao.reference) or 0) + 1
  return ao.reference
end

local function dataOf(data, tags, fname)
  local t = type(data)
  if data == nil then return "" end
  if t == "string" then return data end
  if t == "number" or t == "boolean" then return tostring(data) end
  if t == "table" then
    local encoded = json.encode(data)
    local hasCT = false
    for _, tag in ipairs(tags) do
      if tag.name == "Content-Type" then hasCT = true end
    end
    if not hasCT then tags[#tags + 1] = { name = "Content-Type", value = "application/json" } end
    return encoded
  end
  error(fname .. ": Data must be a string or a table, got " .. t, 3)
end

-- Collect a message's user tags (fields other than the skipped ones, then msg.Tags).
local function userTags(msg, skip, tags, fname)
  local names = {}
  for k in pairs(msg) do
    if type(k) == "string" and not skip[k] then names[#names + 1] = k end
  end
  table.sort(names)
  local ok, err = pcall(function()
    for _, k in ipairs(names) do
      local v = msg[k]
      if type(v) ~= "function" and not RESERVED_TAGS[k] then
        tags[#tags + 1] = { name = k, value = tagValue(k, v) }
      end
    end
    for _, nv in ipairs(eachTag(msg.Tags)) do
      if not RESERVED_TAGS[nv[1]] and nv[2] ~= nil then
        tags[#tags + 1] = { name = nv[1], value = tagValue(nv[1], nv[2]) }
      end
    end
  end)
  if not ok then error(fname .. ": " .. tostring(err), 3) end
end

local SEND_SKIP = { Target = true, Data = true, Anchor = true, Tags = true }

function ao.send(msg)
  if type(msg) ~= "table" then error("ao.send: expected a message table, got " .. type(msg), 2) end
  if type(msg.Target) ~= "string" or msg.Target == "" then
    error("ao.send: Target is required (a process or wallet id string)", 2)
  end
  local ref = nextReference()
  local tags = {
    { name = "Data-Protocol", value = "ao" },
    { name = "Variant", value = "ao.TN.1" },
    { name = "Type", value = "Message" },
    { name = "Reference", value = tostring(ref) },
  }
  userTags(msg, SEND_SKIP, tags, "ao.send")
  local out = {
    Target = msg.Target,
    Anchor = msg.Anchor ~= nil and tostring(msg.Anchor) or string.format("%032d", ref),
    Tags = tags,
  }
  out.Data = dataOf(msg.Data, tags, "ao.send")
  table.insert(ao.outbox.Messages, out)
  local ret = { Reference = tostring(ref) }
  for k, v in pairs(out) do ret[k] = v end
  return withReceive(ret, msg.Target, ref)
end

local SPAWN_SKIP = { Data = true, Anchor = true, Tags = true, Target = true, Module = true }

local function isTxid(s)
  return type(s) == "string" and #s == 43 and s:find("^[%w_%-]+$") ~= nil
end
ao.isTxid = isTxid

function ao.spawn(module, msg)
  if not isTxid(module) then
    error("ao.spawn: module must be a 43-character Arweave txid, got " .. tostring(module), 2)
  end
  msg = msg or {}
  if type(msg) ~= "table" then error("ao.spawn: expected a message table, got " .. type(msg), 2) end
  local ref = nextReference()
  local tags = {
    { name = "Data-Protocol", value = "ao" },
    { name = "Variant", value = "ao.TN.1" },
    { name = "Type", value = "Process" },
    { name = "From-Process", value = ao.id },
    { name = "From-Module", value = ao._module },
    { name = "Module", value = module },
    { name = "Reference", value = tostring(ref) },
  }
  local skip = setmetatable({ ["From-Process"] = true, ["From-Module"] = true }, { __index = SPAWN_SKIP })
  userTags(msg, skip, tags, "ao.spawn")
  local out = {
    Anchor = msg.Anchor ~= nil and tostring(msg.Anchor) or string.format("%032d", ref),
    Tags = tags,
  }
  out.Data = dataOf(msg.Data, tags, "ao.spawn")
  table.insert(ao.outbox.Spawns, out)
  local ret = { Reference = tostring(ref) }
  for k, v in pairs(out) do ret[k] = v end
  return withReceive(ret, "_", ref, { Action = "Spawned" })
end

function ao.assign(a)
  if type(a) ~= "table" then error("ao.assign: expected {Processes = {...}, Message = id}", 2) end
  local procs = a.Processes
  if type(procs) == "string" then procs = { procs } end
  if type(procs) ~= "table" or #procs == 0 then
    error("ao.assign: Processes must be a non-empty list of process ids", 2)
  end
  for _, p in ipairs(procs) do
    if type(p) ~= "string" then error("ao.assign: process ids must be strings", 2) end
  end
  if type(a.Message) ~= "string" or a.Message == "" then
    error("ao.assign: Message must be a message id string", 2)
  end
  local out = { Processes = { table.unpack(procs) }, Message = a.Message }
  table.insert(ao.outbox.Assignments, out)
  return out
end

package.loaded["ao"] = ao
package.loaded[".ao"] = ao
_G.ao = ao
return ao
