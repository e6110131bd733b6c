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
-- Handlers.once(name, pattern, handle)  add with maxRuns = 1 (name optional).
-- Handlers.before(name).add(...), Handlers.after(name).add(...)  insert relative to
--   an existing handler.
-- Handlers.remove(name)  removes it; returns true if it existed.
-- Handlers.list          the ordered handler records {name, pattern, handle, maxRuns}.
--
-- Patterns:
--   * a string: matches when msg.Action == pattern;
--   * a table {Field = spec, ...}: every field must match; the field is looked up as
--     msg[Field], then msg.Tags[Field]. A spec is "_" (anything), an exact string, a
--     Lua pattern (used with string.match when it has magic characters and the exact
--     comparison failed), a number/boolean (compared as text), a function
--     spec(value, msg) -> truthy, or a list of specs (any of them);
--   * a function fn(msg) returning:
--       true, -1, "break"      -> run the handler and stop;
--       1, "continue"          -> run the handler and keep evaluating;
--       false, nil, 0, "skip"  -> do not run it.
--
-- Evaluation: handlers are tried in list order. If no handler matched with "break",
-- Handlers.default(msg, env) runs; it stores the message in the global `Inbox`
-- (keeping the last `MaxInboxCount`, 10000 by default) and prints a one-line notice.
-- A handler's error propagates (the process turns it into an Error response, and the
-- host rolls the state back); its text is prefixed with "handler '<name>': ".

local Handlers = { _version = "1.0", list = {}, utils = {}, _onceCounter = 0 }

local function findIndex(name)
  for i, h in ipairs(Handlers.list) do
    if h.name == name then return i end
  end
  return nil
end

local function isCallable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and type(mt.__call) == "function"
end

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
  if i then Handlers.list[i] = rec else table.insert(Handlers.list, rec) end
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
local MAGIC = "[%^%$%(%)%%%.%[%]%*%+%-%?]"

local function matchValue(value, spec, msg)
  if spec == "_" then return true end
  local st = type(spec)
  if isCallable(spec) and st ~= "table" then
    return spec(value, msg) and true or false
  end
  if st == "table" then
    if isCallable(spec) then return spec(value, msg) and true or false end
    for _, s in ipairs(spec) do
      if matchValue(value, s, msg) then return true end
    end
    return false
  end
  if value == nil then return false end
  local vt = type(value)
  if vt == "number" or vt == "boolean" then value = tostring(value)
  elseif vt ~= "string" then return false end
  if st == "string" then
    if value == spec then return true end
    if spec:find(MAGIC) then
      local ok, r = pcall(string.match, value, spec)
      return ok and r ~= nil
    end
    return false
  end
  if st == "number" or st == "boolean" then return value == tostring(spec) end
  return false
end

-- Returns the raw match result for a pattern (boolean / number / string).
function Handlers.utils.matchesSpec(msg, pattern)
  if type(pattern) == "string" then
    return msg.Action == pattern
  end
  if type(pattern) == "table" and not isCallable(pattern) then
    -- plain specs first, function specs only once all of those matched (so a
    -- function spec for a tag only runs on messages that passed the other checks)
    local deferred = nil
    for field, spec in pairs(pattern) do
      if type(spec) == "function" then
        deferred = deferred or {}
        deferred[#deferred + 1] = field
      else
        local value = msg[field]
        if value == nil and type(msg.Tags) == "table" then value = msg.Tags[field] end
        if not matchValue(value, spec, msg) then return false end
      end
    end
    if deferred then
      table.sort(deferred, function(a, b) return tostring(a) < tostring(b) end)
      for _, field in ipairs(deferred) do
        local value = msg[field]
        if value == nil and type(msg.Tags) == "table" then value = msg.Tags[field] end
        if not matchValue(value, pattern[field], msg) then return false end
      end
    end
    return true
  end
  if isCallable(pattern) then return pattern(msg) end
  return false
end

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

function Handlers.utils.hasMatchingTag(name, value)
  return function(msg)
    local v = type(msg.Tags) == "table" and msg.Tags[name] or nil
    if v ~= nil and tostring(v) == tostring(value) then return -1 end
    return 0
  end
end

function Handlers.utils.hasMatchingTagOf(name, values)
  return function(msg)
    local v = type(msg.Tags) == "table" and msg.Tags[name] or nil
    if v == nil then return 0 end
    for _, x in ipairs(values) do
      if tostring(v) == tostring(x) then return -1 end
    end
    return 0
  end
end

function Handlers.utils.hasMatchingData(data)
  return function(msg)
    if msg.Data == data then return -1 end
    return 0
  end
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
    local r = normalize(Handlers.utils.matchesSpec(msg, pattern), "continue")
    if r ~= 0 then return 1 end
    return 0
  end
end

---------------------------------------------------------------------------
-- Evaluation
---------------------------------------------------------------------------
MaxInboxCount = MaxInboxCount or 10000
Inbox = Inbox or {}

-- Stores an unhandled message in Inbox (overridable).
function Handlers.default(msg, env)
  Inbox[#Inbox + 1] = msg
  local limit = math.tointeger(MaxInboxCount) or 10000
  local excess = #Inbox - limit
  if excess > 0 then
    table.move(Inbox, excess + 1, #Inbox + excess, 1) -- shift down, clearing the tail
  end
  print("New message from " .. tostring(msg.From) .. ": Action = " .. tostring(msg.Action or "-"))
end

-- Runs the handlers for msg. Returns true if a handler matched with "break".
function Handlers.evaluate(msg, env)
  local handled = false
  local snapshot = table.move(Handlers.list, 1, #Handlers.list, 1, {})
  for _, h in ipairs(snapshot) do
    local idx = findIndex(h.name)
    if idx and Handlers.list[idx] == h then -- still registered
      local m = normalize(Handlers.utils.matchesSpec(msg, h.pattern), h.name)
      if m ~= 0 then
        if m < 0 then handled = true end
        local ok, err = pcall(h.handle, msg, env)
        if not ok then
          if type(err) == "string" then
            error("handler '" .. h.name .. "': " .. err, 0)
          end
          error(err, 0)
        end
        if h.maxRuns then
          h.maxRuns = h.maxRuns - 1
          if h.maxRuns <= 0 then
            local j = findIndex(h.name)
            if j and Handlers.list[j] == h then table.remove(Handlers.list, j) end
          end
        end
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
