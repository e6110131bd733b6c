-- utils.lua: the `.utils` module of the AOS process runtime (Lua 5.3).
--
-- Written for this project from aos's documented API (no aos code copied): small
-- functional helpers over Lua tables, curried like aos's (`Utils.map(f)(t)` and
-- `Utils.map(f, t)` are the same), plus the tag-name helpers the runtime uses.
--
--   curry(fn, arity)           call with fewer arguments to get a function of the rest
--   compose(f, g, h)(x)        f(g(h(x)))
--   map(fn, t)                 {fn(v, i)...}       (arrays)
--   filter(fn, t)              {v | fn(v)}          (arrays)
--   reduce(fn, initial, t)     fn(acc, v, i) left to right (arrays)
--   find(fn, t)                first v with fn(v), else nil
--   includes(v, t)             true if some element == v
--   keys(t), values(t)         (sorted by key for a stable order)
--   prop(name, t), propEq(name, value, t)
--   reverse(t), concat(a, b), isArray(t)
--   matchesPattern(pattern, value, msg), matchesSpec(msg, spec)
--   normalize(name)            Title-Case per word: "data-protocol" -> "Data-Protocol"
--   canonical(name)            lower case, "_" -> "-": the key of case-insensitive lookups

local utils = { _version = "1.0" }

function utils.curry(fn, arity)
  assert(type(fn) == "function", "function is required as first argument")
  arity = arity or debug.getinfo(fn, "u").nparams
  if arity < 2 then return fn end
  return function(...)
    local args = table.pack(...)
    if args.n >= arity then return fn(table.unpack(args, 1, args.n)) end
    return utils.curry(function(...)
      local rest = table.pack(...)
      local all = table.move(args, 1, args.n, 1, {})
      table.move(rest, 1, rest.n, args.n + 1, all)
      return fn(table.unpack(all, 1, args.n + rest.n))
    end, arity - args.n)
  end
end

function utils.compose(...)
  local fns = table.pack(...)
  assert(fns.n > 0, "compose requires at least one function")
  return function(...)
    local vals = table.pack(...)
    for i = fns.n, 1, -1 do vals = table.pack(fns[i](table.unpack(vals, 1, vals.n))) end
    return table.unpack(vals, 1, vals.n)
  end
end

function utils.isArray(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return true
end

utils.map = utils.curry(function(fn, data)
  assert(type(fn) == "function", "first argument should be a unary function")
  assert(type(data) == "table", "second argument should be an array")
  local out = {}
  for i, v in ipairs(data) do out[i] = fn(v, i) end
  return out
end, 2)

utils.filter = utils.curry(function(fn, data)
  assert(type(fn) == "function", "first argument should be a unary function")
  assert(type(data) == "table", "second argument should be an array")
  local out = {}
  for _, v in ipairs(data) do if fn(v) then out[#out + 1] = v end end
  return out
end, 2)

utils.reduce = utils.curry(function(fn, initial, t)
  assert(type(fn) == "function", "first argument should be a function that accepts (result, value, key)")
  assert(type(t) == "table", "third argument should be a table")
  local acc = initial
  for i, v in ipairs(t) do
    if i == 1 and acc == nil then acc = v else acc = fn(acc, v, i) end
  end
  return acc
end, 3)

utils.find = utils.curry(function(fn, t)
  for _, v in ipairs(t) do if fn(v) then return v end end
  return nil
end, 2)

utils.includes = utils.curry(function(val, t)
  assert(type(t) == "table", "second argument should be a table")
  for _, v in pairs(t) do if v == val then return true end end
  return false
end, 2)

local function sortedKeys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return ks
end

function utils.keys(t)
  assert(type(t) == "table", "argument should be a table")
  return sortedKeys(t)
end

function utils.values(t)
  assert(type(t) == "table", "argument should be a table")
  local out = {}
  for i, k in ipairs(sortedKeys(t)) do out[i] = t[k] end
  return out
end

utils.prop = utils.curry(function(name, obj) return obj[name] end, 2)

utils.propEq = utils.curry(function(name, value, obj)
  return type(obj) == "table" and obj[name] == value
end, 3)

function utils.reverse(t)
  local out, n = {}, #t
  for i = 1, n do out[i] = t[n + 1 - i] end
  return out
end

utils.concat = utils.curry(function(a, b)
  local out = table.move(a, 1, #a, 1, {})
  return table.move(b, 1, #b, #out + 1, out)
end, 2)

function utils.normalize(s)
  if type(s) ~= "string" then return s end
  return (s:lower():gsub("%f[%w]%l", string.upper))
end

function utils.canonical(s)
  if type(s) ~= "string" then return s end
  return (s:lower():gsub("_", "-"))
end

-- the value of `key` in msg, else in msg.Tags; exact names first, then ignoring case
-- and "-" vs "_"
function utils.lookup(msg, key)
  if type(msg) ~= "table" then return nil end
  local v = msg[key]
  if v ~= nil then return v end
  local tags = msg.Tags
  if type(tags) == "table" then
    v = tags[key]
    if v ~= nil then return v end
  end
  if type(key) ~= "string" then return nil end
  local want = utils.canonical(key)
  for k, val in pairs(msg) do
    if type(k) == "string" and type(val) ~= "function" and utils.canonical(k) == want then return val end
  end
  if type(tags) == "table" then
    for k, val in pairs(tags) do
      if type(k) == "string" and utils.canonical(k) == want then return val end
    end
  end
  return nil
end

local MAGIC = "[%^%$%(%)%%%.%[%]%*%+%-%?]"

local function isCallable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and type(mt.__call) == "function"
end
utils.isCallable = isCallable

-- Does one value match one pattern? "_" anything; a function (value, msg); a table of
-- alternatives; a string: equal, or a Lua pattern when it has magic characters;
-- numbers/booleans compare as text.
function utils.matchesPattern(pattern, value, msg)
  if pattern == "_" then return true end
  local pt = type(pattern)
  if pt == "function" then return pattern(value, msg) and true or false end
  if pt == "table" then
    if isCallable(pattern) then return pattern(value, msg) and true or false end
    for _, p in ipairs(pattern) do
      if utils.matchesPattern(p, value, msg) then return true end
    end
    return false
  end
  if value == nil then return false end
  local vt = type(value)
  if vt == "number" or vt == "boolean" then value = tostring(value)
  elseif vt ~= "string" then return false end
  if pt == "string" then
    if value == pattern then return true end
    if pattern:find(MAGIC) then
      local ok, r = pcall(string.match, value, pattern)
      return ok and r ~= nil
    end
    return false
  end
  if pt == "number" or pt == "boolean" then return value == tostring(pattern) end
  return false
end

-- Does msg match a spec? A string: msg.Action == spec. A function: its result (any
-- value; the caller interprets it). A table {Field = pattern}: every field matches
-- (fields looked up in msg, then msg.Tags, case-insensitively); function patterns are
-- tried after the others.
function utils.matchesSpec(msg, spec)
  if type(spec) == "string" then return utils.lookup(msg, "Action") == spec end
  if isCallable(spec) and type(spec) ~= "table" then return spec(msg) end
  if type(spec) == "table" then
    if isCallable(spec) then return spec(msg) end
    local deferred
    for field, p in pairs(spec) do
      if type(p) == "function" then
        deferred = deferred or {}
        deferred[#deferred + 1] = field
      elseif not utils.matchesPattern(p, utils.lookup(msg, field), msg) then
        return false
      end
    end
    if deferred then
      table.sort(deferred, function(a, b) return tostring(a) < tostring(b) end)
      for _, field in ipairs(deferred) do
        if not utils.matchesPattern(spec[field], utils.lookup(msg, field), msg) then return false end
      end
    end
    return true
  end
  return false
end

package.loaded["utils"] = utils
package.loaded[".utils"] = utils
_G.Utils = utils
return utils
