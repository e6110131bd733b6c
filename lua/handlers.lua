-- handlers.lua: message handlers for the AOS process runtime (Lua 5.3).
--
-- Written for this project from aos's documented behaviour.
--
-- Handlers.add(name, pattern, handle [, maxRuns])
--   Registers a handler. If a handler with that name exists it is replaced in place
--   (keeps its position); otherwise it is appended. `Handlers.add(name, handle)` is
--   short for a pattern matching Action == name.
-- Handlers.append(...)   same as add.
-- Handlers.prepend(...)  like add, but the handler is (re)inserted at the front.
-- Handlers.once(name, pattern, handle)  prepend with maxRuns = 1 (name optional), as aos
--   does, so that one-shot handlers (and Handlers.receive's resolvers) run first.
-- Handlers.receive(pattern)  suspends the running handler (it runs in a coroutine) until
--   a later message matches pattern; returns that message. State in between survives.
-- Handlers.generateResolver(spec)  a handle from a function or {[pattern] = fn, ...}
--   (also accepted directly as the handle of add/append/prepend/once).
-- Handlers.before(name).add(...), Handlers.after(name).add(...)  insert relative to
--   an existing handler.
-- Handlers.remove(name)  removes it; returns true if it existed.
-- Handlers.list          the ordered handler records {name, pattern, handle, maxRuns}.
--
-- Patterns (Handlers.utils.matchesSpec, from .utils):
--   * a string: matches when msg.Action == pattern;
--   * a table {Field = spec, ...}: every field must match; the field is looked up as
--     msg[Field], then msg.Tags[Field], then ignoring case ("action" = "Action"). A spec is "_" (anything), an exact string, a
--     Lua pattern (used with string.match when it has magic characters and the exact
--     comparison failed), a number/boolean (compared as text), a function
--     spec(value, msg) -> truthy, or a list of specs (any of them);
--   * a function fn(msg) returning:
--       true, -1, "break"      -> run the handler and stop;
--       1, "continue"          -> run the handler and keep evaluating;
--       false, nil, 0, "skip"  -> do not run it.
--
-- Evaluation: handlers are tried in list order; each runs in its own coroutine. If no
-- handler matched with "break", Handlers.default(msg, env) runs; it stores the message in
-- the global `Inbox` (keeping the last `MaxInboxCount`, 10000 by default) and prints
-- aos's colored "New Message From ..." line.
-- A handler's error propagates (the process turns it into an Error response, and the
-- host rolls the state back); its text is prefixed with "handler '<name>': ".

local utils = require(".utils")
local Handlers = { _version = "2.0", list = {}, utils = {}, coroutines = {}, _onceCounter = 0 }

local function findIndex(name)
  for i, h in ipairs(Handlers.list) do
    if h.name == name then return i end
  end
  return nil
end

local isCallable = utils.isCallable

-- Normalise the arguments of add/append/prepend/once into a handler record.
local function makeRecord(fname, name, pattern, handle, maxRuns)
  if type(name) ~= "string" then
    error("Handlers." .. fname .. ": name must be a string, got " .. type(name), 3)
  end
  if handle == nil and isCallable(pattern) then
    -- Handlers.add("Ping", function(msg) ... end): matches Action == "Ping"
    handle, pattern = pattern, name
  end
  local pt = type(pattern)
  if not (pt == "string" or pt == "table" or isCallable(pattern)) then
    error("Handlers." .. fname .. ": pattern must be an Action string, a tag table or a function, got "
      .. pt, 3)
  end
  if type(handle) == "table" and not isCallable(handle) then
    handle = Handlers.generateResolver(handle)
  end
  if not isCallable(handle) then
    error("Handlers." .. fname .. ": handle must be a function, got " .. type(handle), 3)
  end
  if maxRuns ~= nil and maxRuns ~= "inf" then
    local n = math.tointeger(maxRuns)
    if not n or n < 1 then
      error("Handlers." .. fname .. ": maxRuns must be a positive integer", 3)
    end
    maxRuns = n
  end
  if maxRuns == "inf" then maxRuns = nil end
  return { name = name, pattern = pattern, handle = handle, maxRuns = maxRuns }
end

function Handlers.add(name, pattern, handle, maxRuns)
  local rec = makeRecord("add", name, pattern, handle, maxRuns)
  local i = findIndex(name)
  if i then Handlers.list[i] = rec else table.insert(Handlers.list, rec) end
  return #Handlers.list
end

function Handlers.append(name, pattern, handle, maxRuns)
  local rec = makeRecord("append", name, pattern, handle, maxRuns)
  local i = findIndex(name)
  if i then Handlers.list[i] = rec else table.insert(Handlers.list, rec) end
  return #Handlers.list
end

function Handlers.prepend(name, pattern, handle, maxRuns)
  local rec = makeRecord("prepend", name, pattern, handle, maxRuns)
  local i = findIndex(name)
  if i then table.remove(Handlers.list, i) end
  table.insert(Handlers.list, 1, rec)
  return #Handlers.list
end

function Handlers.once(name, pattern, handle)
  if type(name) ~= "string" then
    -- Handlers.once(pattern, handle)
    Handlers._onceCounter = Handlers._onceCounter + 1
    name, pattern, handle = "_once_" .. Handlers._onceCounter, name, pattern
  end
  local rec = makeRecord("once", name, pattern, handle, 1)
  local i = findIndex(name)
  if i then table.remove(Handlers.list, i) end
  table.insert(Handlers.list, 1, rec)
  return #Handlers.list
end

local function relative(fname, target, offset)
  return {
    add = function(name, pattern, handle, maxRuns)
      local rec = makeRecord(fname, name, pattern, handle, maxRuns)
      local old = findIndex(name)
      if old then table.remove(Handlers.list, old) end
      local i = findIndex(target)
      if not i then
        error("Handlers." .. fname .. ": no handler named '" .. tostring(target) .. "'", 2)
      end
      table.insert(Handlers.list, i + offset, rec)
      return #Handlers.list
    end,
  }
end

function Handlers.before(name) return relative("before", name, 0) end
function Handlers.after(name) return relative("after", name, 1) end

function Handlers.remove(name)
  local i = findIndex(name)
  if not i then return false end
  table.remove(Handlers.list, i)
  return true
end

-- Names of the registered handlers, in order.
function Handlers.names()
  local t = {}
  for i, h in ipairs(Handlers.list) do t[i] = h.name end
  return t
end

---------------------------------------------------------------------------
-- Matching
---------------------------------------------------------------------------
Handlers.utils.matchesSpec = utils.matchesSpec
Handlers.utils.matchesPattern = utils.matchesPattern

-- Normalise a match result: -1 = run and stop, 0 = skip, 1 = run and continue.
local function normalize(r, name)
  local t = type(r)
  if r == nil or r == false then return 0 end
  if r == true then return -1 end
  if t == "number" then
    if r < 0 then return -1 elseif r > 0 then return 1 else return 0 end
  end
  if t == "string" then
    if r == "break" then return -1 elseif r == "continue" then return 1 else return 0 end
  end
  error("handler '" .. tostring(name) .. "': pattern returned a " .. t
    .. " (expected boolean, number, \"break\", \"continue\" or nil)", 0)
end
Handlers.utils.normalizeMatch = normalize

local function same(v, want) return v ~= nil and tostring(v) == tostring(want) end

-- Tag names are matched ignoring case (aos 2): hasMatchingTag("Action", "Ping") matches
-- a tag written "action".
function Handlers.utils.hasMatchingTag(name, value)
  return function(msg)
    local tags = type(msg.Tags) == "table" and msg.Tags or {}
    return same(utils.lookup({ Tags = tags }, name), value)
  end
end

function Handlers.utils.hasMatchingTagOf(name, values)
  return function(msg)
    local tags = type(msg.Tags) == "table" and msg.Tags or {}
    local v = utils.lookup({ Tags = tags }, name)
    for _, x in ipairs(values) do
      if same(v, x) then return true end
    end
    return false
  end
end

function Handlers.utils.hasMatchingData(data)
  return function(msg) return msg.Data == data end
end

-- A handler that replies to the sender: a string becomes the reply's Data, a table
-- gives the reply's fields (Data, Action, other tags, Tags = {...}).
function Handlers.utils.reply(input)
  return function(msg)
    local r
    if type(input) == "table" then
      r = {}
      for k, v in pairs(input) do r[k] = v end
    else
      r = { Data = input }
    end
    if type(msg.reply) == "function" then return msg.reply(r) end
    r.Target = msg.From
    return ao.send(r)
  end
end

-- Wrap a pattern so that a match lets evaluation continue.
function Handlers.utils.continue(pattern)
  return function(msg)
    local r = normalize(utils.matchesSpec(msg, pattern), "continue")
    if r ~= 0 then return 1 end
    return 0
  end
end

-- {[pattern] = fn, ...} or fn -> a handle that runs the first resolver whose pattern
-- matches (patterns tried in a stable order: strings sorted, then the others).
function Handlers.generateResolver(spec)
  if isCallable(spec) then return spec end
  if type(spec) ~= "table" then
    error("Handlers.generateResolver: expected a function or a {pattern = function} table", 2)
  end
  return function(msg, env)
    local keys = {}
    for k in pairs(spec) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta == "string" end
      if ta == "string" then return a < b end
      return false
    end)
    for _, pattern in ipairs(keys) do
      if normalize(utils.matchesSpec(msg, pattern), "resolver") ~= 0 then
        return spec[pattern](msg, env)
      end
    end
  end
end

---------------------------------------------------------------------------
-- Coroutines: every handler runs in one, so it can wait for a later message
---------------------------------------------------------------------------
local function resume(co, name, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then
    if type(err) == "string" and name then error("handler '" .. name .. "': " .. err, 0) end
    error(err, 0)
  end
  if coroutine.status(co) == "suspended" then
    Handlers.coroutines[#Handlers.coroutines + 1] = co
  end
  -- forget finished ones
  local live = {}
  for _, c in ipairs(Handlers.coroutines) do
    if coroutine.status(c) == "suspended" and not live[c] then live[#live + 1] = c; live[c] = true end
  end
  for i = #live, 1, -1 do live[live[i]] = nil end
  Handlers.coroutines = live
end
Handlers._resume = resume

-- Runs fn(...) in a new coroutine; errors propagate (prefixed with the handler's name).
function Handlers.spawnCoroutine(name, fn, ...)
  resume(coroutine.create(fn), name, ...)
end

-- Waits (inside a handler or Eval) for the next message matching pattern, and returns it.
-- The handler's coroutine is suspended; a one-shot handler resumes it when the message
-- arrives (in a later call of the process), with everything it printed or sent going
-- into that message's result.
function Handlers.receive(pattern)
  local co, isMain = coroutine.running()
  if co == nil or isMain then
    error("Handlers.receive: only a handler (or Eval) can wait for a message", 2)
  end
  Handlers._onceCounter = Handlers._onceCounter + 1
  Handlers.once("_receive_" .. Handlers._onceCounter, pattern, function(msg)
    resume(co, nil, msg)
  end)
  return coroutine.yield(pattern)
end

---------------------------------------------------------------------------
-- Evaluation
---------------------------------------------------------------------------
MaxInboxCount = MaxInboxCount or 10000
Inbox = Inbox or {}

-- as aos shows a sender: first three and last three characters ("FRED" -> "FRE...RED")
local function shortId(id)
  id = tostring(id)
  return id:sub(1, 3) .. "..." .. id:sub(-3)
end
Handlers.utils.shortId = shortId

-- Stores an unhandled message in Inbox (overridable) and prints aos's notice.
function Handlers.default(msg, env)
  Inbox[#Inbox + 1] = msg
  local limit = math.tointeger(MaxInboxCount) or 10000
  local excess = #Inbox - limit
  if excess > 0 then
    table.move(Inbox, excess + 1, #Inbox + excess, 1) -- shift down, clearing the tail
  end
  local c = Colors or { red = "", green = "", blue = "", gray = "", reset = "" }
  local what
  if msg.Action ~= nil then
    what = c.gray .. "Action = " .. c.blue .. tostring(msg.Action)
  else
    local d = msg.Data
    if type(d) ~= "string" then d = type(d) == "table" and "<table>" or tostring(d) end
    what = c.gray .. "Data = " .. c.blue .. d
  end
  print(c.gray .. "New Message From " .. c.green .. shortId(msg.From) .. c.gray .. ": " .. what .. c.reset)
end

-- Runs the handlers for msg. Returns true if a handler matched with "break".
function Handlers.evaluate(msg, env)
  local handled = false
  local snapshot = table.move(Handlers.list, 1, #Handlers.list, 1, {})
  for _, h in ipairs(snapshot) do
    local idx = findIndex(h.name)
    if idx and Handlers.list[idx] == h then -- still registered
      local m = normalize(utils.matchesSpec(msg, h.pattern), h.name)
      if m ~= 0 then
        if m < 0 then handled = true end
        if h.maxRuns then
          h.maxRuns = h.maxRuns - 1
          if h.maxRuns <= 0 then
            local j = findIndex(h.name)
            if j and Handlers.list[j] == h then table.remove(Handlers.list, j) end
          end
        end
        Handlers.spawnCoroutine(h.name, h.handle, msg, env)
        if m < 0 then break end
      end
    end
  end
  if not handled and Handlers.default then
    Handlers.default(msg, env)
  end
  return handled
end

package.loaded["handlers"] = Handlers
package.loaded[".handlers"] = Handlers
_G.Handlers = Handlers
return Handlers
