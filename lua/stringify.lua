-- stringify.lua: printing tables the way the aos console shows them (Lua 5.3).
--
-- Written for this project (no aos code copied). Three modules:
--   .stringify   stringify.format(v [, indent])  -> colored text (ANSI): strings green in
--                quotes, numbers/booleans blue, keys red; short arrays on one line
--                `{ 1, 2, 3 }`, other tables one key per line, keys sorted; cycles shown as
--                `<cycle>`. stringify.isSimpleArray(t).
--   .pretty      pretty.tprint(v [, indent])     -> the same layout without colors
--   .dump        dump(v)                         -> Lua-syntax text (`{ a = 1, "x" }`)
-- Globals: Colors (red, green, blue, gray, reset), Dump = dump.

Colors = Colors or { red = "\27[31m", green = "\27[32m", blue = "\27[34m", gray = "\27[90m", reset = "\27[0m" }
Bell = Bell or "\7"

local NOCOLOR = { red = "", green = "", blue = "", gray = "", reset = "" }

local function isIdent(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end

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

local function isSimpleArray(t)
  local n = #t
  local count = 0
  for k, v in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    if type(v) == "table" then return false end
    count = count + 1
  end
  return count == n
end

local function format(v, indent, seen, c)
  local t = type(v)
  if t == "string" then return c.green .. string.format("%q", v):gsub("\\\n", "\\n") .. c.reset end
  if t == "number" or t == "boolean" then return c.blue .. tostring(v) .. c.reset end
  if t ~= "table" then return tostring(v) end
  local mt = getmetatable(v)
  if type(mt) == "table" and mt.__tostring then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if next(v) == nil then return "{}" end
  seen[v] = true
  local out
  if isSimpleArray(v) then
    local parts = {}
    for i = 1, #v do parts[i] = format(v[i], indent, seen, c) end
    out = "{ " .. table.concat(parts, ", ") .. " }"
  else
    local inner = indent .. "  "
    local parts = {}
    local n = #v
    for _, k in ipairs(sortedKeys(v)) do
      local val = format(v[k], inner, seen, c)
      if math.type(k) == "integer" and k >= 1 and k <= n then
        parts[#parts + 1] = inner .. val
      elseif isIdent(k) then
        parts[#parts + 1] = inner .. c.red .. k .. c.reset .. " = " .. val
      else
        parts[#parts + 1] = inner .. "[" .. format(k, inner, seen, c) .. "] = " .. val
      end
    end
    out = "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
  end
  seen[v] = nil
  return out
end

local stringify = { _version = "1.0", isSimpleArray = isSimpleArray }
function stringify.format(v, indent)
  return format(v, type(indent) == "string" and indent or "", {}, Colors or NOCOLOR)
end

local pretty = { _version = "1.0" }
function pretty.tprint(v, indent)
  local pad = ""
  if math.type(indent) == "integer" then pad = string.rep(" ", indent)
  elseif type(indent) == "string" then pad = indent end
  return format(v, pad, {}, NOCOLOR)
end

local function dumpValue(v, seen)
  local t = type(v)
  if t == "string" then return (string.format("%q", v):gsub("\\\n", "\\n")) end
  if t == "number" then
    if v ~= v then return "0/0" end
    if v == math.huge then return "math.huge" end
    if v == -math.huge then return "-math.huge" end
    return tostring(v)
  end
  if t ~= "table" then return tostring(v) end
  if seen[v] then return "nil --[[cycle]]" end
  seen[v] = true
  local parts = {}
  local n = #v
  for i = 1, n do parts[#parts + 1] = dumpValue(v[i], seen) end
  for _, k in ipairs(sortedKeys(v)) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then
      local key = isIdent(k) and k or ("[" .. dumpValue(k, seen) .. "]")
      parts[#parts + 1] = key .. " = " .. dumpValue(v[k], seen)
    end
  end
  seen[v] = nil
  if #parts == 0 then return "{}" end
  return "{ " .. table.concat(parts, ", ") .. " }"
end

local function dump(v) return dumpValue(v, {}) end

package.loaded["stringify"] = stringify
package.loaded[".stringify"] = stringify
package.loaded["pretty"] = pretty
package.loaded[".pretty"] = pretty
package.loaded["dump"] = dump
package.loaded[".dump"] = dump
Dump = dump
return stringify
