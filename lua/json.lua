-- json.lua: JSON encode/decode for the AOS process runtime (Lua 5.3).
--
-- Written for this project. Behaviour, documented:
--   * json.encode(value) -> string
--       - nil / json.null -> null, booleans, strings, numbers, tables.
--       - integers print as integers ("42"); floats print like Lua 5.3's tostring
--         ("2.0", "0.5", "1e+20") but with enough digits (up to 17) to round-trip.
--         NaN and +/-inf are an error (JSON has no spelling for them).
--       - a table whose keys are exactly 1..n is an array; an EMPTY table is `[]`
--         (like the JSON library aos ships). Use json.object() (or
--         setmetatable(t, json.object_mt)) to force `{}`; json.array() forces an array.
--       - any other table is an object; keys are sorted (deterministic output);
--         integer/float keys become strings; other key types are an error.
--       - strings: `"`, `\` and control characters are escaped (\n, \t, ... or \u00XX,
--         DEL as \u007f). Invalid UTF-8 bytes are replaced by U+FFFD so the output is
--         always valid UTF-8 JSON (the hosts parse it as text).
--       - cycles, functions, userdata and threads are errors.
--   * json.decode(text [, opts]) -> value
--       - strict RFC 8259 grammar; errors name the line, column and byte offset.
--       - integers (no fraction/exponent) decode to Lua integers when they fit, others
--         to floats.
--       - \uXXXX escapes become UTF-8, surrogate pairs are combined; a lone surrogate
--         becomes U+FFFD.
--       - null decodes to nil (so object keys with null are absent and arrays with
--         null have holes) unless opts.null gives a value to use instead, e.g. json.null.
--       - decoded objects carry json.object_mt and arrays json.array_mt as metatables,
--         so `{}` and `[]` survive a decode/encode round trip.

local json = { _version = "1.0" }

local byte, char, find, sub, format, concat =
  string.byte, string.char, string.find, string.sub, string.format, table.concat
local mtype, tointeger = math.type, math.tointeger

json.object_mt = { __jsontype = "object" }
json.array_mt = { __jsontype = "array" }
json.null = setmetatable({}, {
  __jsontype = "null",
  __tostring = function() return "null" end,
})

function json.object(t) return setmetatable(t or {}, json.object_mt) end
function json.array(t) return setmetatable(t or {}, json.array_mt) end

---------------------------------------------------------------------------
-- UTF-8 sanitising
---------------------------------------------------------------------------
local REPLACEMENT = "\239\191\189" -- U+FFFD

-- length of the valid UTF-8 sequence starting at i, or nil if invalid
local function seqlen(s, i, c)
  local c1, c2, c3 = byte(s, i + 1, i + 3)
  if c >= 0xC2 and c <= 0xDF then
    if c1 and c1 >= 0x80 and c1 <= 0xBF then return 2 end
  elseif c >= 0xE0 and c <= 0xEF then
    local lo, hi = 0x80, 0xBF
    if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    if c1 and c1 >= lo and c1 <= hi and c2 and c2 >= 0x80 and c2 <= 0xBF then return 3 end
  elseif c >= 0xF0 and c <= 0xF4 then
    local lo, hi = 0x80, 0xBF
    if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    if c1 and c1 >= lo and c1 <= hi and c2 and c2 >= 0x80 and c2 <= 0xBF
       and c3 and c3 >= 0x80 and c3 <= 0xBF then return 4 end
  end
  return nil
end

-- Returns s unchanged if it is valid UTF-8, else a copy with each invalid byte
-- replaced by U+FFFD.
local function utf8_sanitize(s)
  local i = find(s, "[\128-\255]")
  if not i then return s end
  local out, n, last, len = nil, 0, 1, #s
  while i do
    local l = seqlen(s, i, byte(s, i))
    if l then
      i = i + l
    else
      out = out or {}
      n = n + 1; out[n] = sub(s, last, i - 1)
      n = n + 1; out[n] = REPLACEMENT
      i = i + 1
      last = i
    end
    if i > len then break end
    i = find(s, "[\128-\255]", i)
  end
  if not out then return s end
  n = n + 1; out[n] = sub(s, last)
  return concat(out)
end
json.utf8_sanitize = utf8_sanitize

---------------------------------------------------------------------------
-- Encoding
---------------------------------------------------------------------------
local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\127'] = '\\u007f',
}
for i = 0, 31 do
  local c = char(i)
  if not escapes[c] then escapes[c] = format("\\u%04x", i) end
end

local function encode_string(s)
  s = utf8_sanitize(s)
  return '"' .. s:gsub('[%c"\\]', escapes) .. '"'
end

local function encode_number(v)
  if mtype(v) == "integer" then return format("%d", v) end
  if v ~= v or v == math.huge or v == -math.huge then
    error("json.encode: cannot encode " .. tostring(v) .. " (not valid JSON)", 0)
  end
  local s = format("%.14g", v)
  if tonumber(s) ~= v then s = format("%.17g", v) end
  if not find(s, "[%.eEn]") then s = s .. ".0" end -- a float stays a float, like tostring
  return s
end
json.format_number = encode_number

local encode_value

local function key_string(k)
  local kt = type(k)
  if kt == "string" then return k end
  if kt == "number" then return encode_number(k) end
  error("json.encode: invalid object key of type " .. kt, 0)
end

local function encode_table(t, buf, n, stack, depth)
  if stack[t] then error("json.encode: circular reference", 0) end
  if depth > 1000 then error("json.encode: nesting too deep", 0) end
  stack[t] = true
  local mt = getmetatable(t)
  local jt = type(mt) == "table" and rawget(mt, "__jsontype") or nil
  local is_array, count
  if jt == "object" then
    is_array = false
  elseif jt == "array" then
    is_array = true
    count = #t
  else
    count = 0
    local maxk, ok = 0, true
    for k in pairs(t) do
      count = count + 1
      if ok and mtype(k) == "integer" and k > 0 then
        if k > maxk then maxk = k end
      else
        ok = false
      end
    end
    is_array = ok and maxk == count
  end
  if is_array then
    n = n + 1; buf[n] = "["
    for i = 1, count do
      if i > 1 then n = n + 1; buf[n] = "," end
      n = encode_value(t[i], buf, n, stack, depth + 1)
    end
    n = n + 1; buf[n] = "]"
  else
    local keys, map, nk = {}, {}, 0
    for k, v in pairs(t) do
      local ks = key_string(k)
      nk = nk + 1; keys[nk] = ks
      map[ks] = v
    end
    table.sort(keys)
    n = n + 1; buf[n] = "{"
    for i = 1, nk do
      local ks = keys[i]
      if i > 1 then n = n + 1; buf[n] = "," end
      n = n + 1; buf[n] = encode_string(ks)
      n = n + 1; buf[n] = ":"
      n = encode_value(map[ks], buf, n, stack, depth + 1)
    end
    n = n + 1; buf[n] = "}"
  end
  stack[t] = nil
  return n
end

encode_value = function(v, buf, n, stack, depth)
  local vt = type(v)
  if vt == "string" then
    n = n + 1; buf[n] = encode_string(v)
  elseif vt == "number" then
    n = n + 1; buf[n] = encode_number(v)
  elseif vt == "boolean" then
    n = n + 1; buf[n] = v and "true" or "false"
  elseif v == nil or v == json.null then
    n = n + 1; buf[n] = "null"
  elseif vt == "table" then
    n = encode_table(v, buf, n, stack, depth)
  else
    error("json.encode: cannot encode a value of type " .. vt, 0)
  end
  return n
end

function json.encode(value)
  local buf = {}
  local ok, err = pcall(encode_value, value, buf, 0, {}, 0)
  if not ok then error(err, 2) end
  return concat(buf)
end

---------------------------------------------------------------------------
-- Decoding
---------------------------------------------------------------------------
local DecodeError = {}

local function decode_error(str, pos, msg)
  local line, col = 1, 1
  local before = sub(str, 1, pos - 1)
  for _ in before:gmatch("\n") do line = line + 1 end
  local lastnl = before:match(".*()\n")
  col = lastnl and (pos - lastnl) or pos
  error(setmetatable({ msg = format("json.decode: %s at line %d column %d (byte %d)",
    msg, line, col, pos) }, DecodeError), 0)
end

local function skip_ws(str, pos)
  local _, e = find(str, "^[ \t\r\n]*", pos)
  return e + 1
end

local function describe(str, pos)
  local c = sub(str, pos, pos)
  if c == "" then return "end of input" end
  if find(c, "%c") or byte(c) > 127 then return format("byte 0x%02x", byte(c)) end
  return "'" .. c .. "'"
end

local escape_chars = {
  ['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t',
}

local function parse_string(str, pos)
  -- pos is at the opening quote
  local buf, n = nil, 0
  local i = pos + 1
  while true do
    local j = find(str, '[\0-\31"\\]', i)
    if not j then decode_error(str, #str + 1, "unterminated string") end
    local c = byte(str, j)
    if c == 34 then -- closing quote
      if not buf then return sub(str, i, j - 1), j + 1 end
      n = n + 1; buf[n] = sub(str, i, j - 1)
      return concat(buf, "", 1, n), j + 1
    elseif c == 92 then -- backslash
      buf = buf or {}
      n = n + 1; buf[n] = sub(str, i, j - 1)
      local e = sub(str, j + 1, j + 1)
      if e == "u" then
        local hex = sub(str, j + 2, j + 5)
        if not find(hex, "^%x%x%x%x$") then
          decode_error(str, j, "invalid \\u escape")
        end
        local cp = tonumber(hex, 16)
        local nexti = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local hex2 = str:match("^\\u(%x%x%x%x)", nexti)
          local lo = hex2 and tonumber(hex2, 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
            nexti = nexti + 6
          else
            cp = 0xFFFD -- lone high surrogate
          end
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          cp = 0xFFFD -- lone low surrogate
        end
        n = n + 1; buf[n] = utf8.char(cp)
        i = nexti
      else
        local r = escape_chars[e]
        if not r then decode_error(str, j, "invalid escape '\\" .. e .. "'") end
        n = n + 1; buf[n] = r
        i = j + 2
      end
    else
      decode_error(str, j, format("control character 0x%02x in string", c))
    end
  end
end

local function parse_number(str, pos)
  local s, e = find(str, "^-?%d+", pos)
  if not s then decode_error(str, pos, "invalid number") end
  if find(str, "^-?0%d", pos) then decode_error(str, pos, "invalid number (leading zero)") end
  local isfloat = false
  if sub(str, e + 1, e + 1) == "." then
    local _, fe = find(str, "^%d+", e + 2)
    if not fe then decode_error(str, e + 1, "invalid number (digits expected after '.')") end
    e = fe; isfloat = true
  end
  if find(str, "^[eE]", e + 1) then
    local _, ee = find(str, "^[eE][-+]?%d+", e + 1)
    if not ee then decode_error(str, e + 1, "invalid number (bad exponent)") end
    e = ee; isfloat = true
  end
  local text = sub(str, pos, e)
  local v
  if isfloat then
    v = tonumber(text) + 0.0
  else
    v = tonumber(text)
    v = tointeger(v) or v
  end
  return v, e + 1
end

local parse_value

local function parse_array(str, pos, depth, opts)
  local t, n = setmetatable({}, json.array_mt), 0
  pos = skip_ws(str, pos + 1)
  if sub(str, pos, pos) == "]" then return t, pos + 1 end
  while true do
    local v
    v, pos = parse_value(str, pos, depth + 1, opts)
    n = n + 1
    if v == nil then v = opts.null end
    t[n] = v
    pos = skip_ws(str, pos)
    local c = sub(str, pos, pos)
    if c == "]" then return t, pos + 1 end
    if c ~= "," then decode_error(str, pos, "expected ',' or ']' but found " .. describe(str, pos)) end
    pos = skip_ws(str, pos + 1)
  end
end

local function parse_object(str, pos, depth, opts)
  local t = setmetatable({}, json.object_mt)
  pos = skip_ws(str, pos + 1)
  if sub(str, pos, pos) == "}" then return t, pos + 1 end
  while true do
    if sub(str, pos, pos) ~= '"' then
      decode_error(str, pos, "expected a string key but found " .. describe(str, pos))
    end
    local k
    k, pos = parse_string(str, pos)
    pos = skip_ws(str, pos)
    if sub(str, pos, pos) ~= ":" then
      decode_error(str, pos, "expected ':' but found " .. describe(str, pos))
    end
    pos = skip_ws(str, pos + 1)
    local v
    v, pos = parse_value(str, pos, depth + 1, opts)
    if v == nil then v = opts.null end
    t[k] = v
    pos = skip_ws(str, pos)
    local c = sub(str, pos, pos)
    if c == "}" then return t, pos + 1 end
    if c ~= "," then decode_error(str, pos, "expected ',' or '}' but found " .. describe(str, pos)) end
    pos = skip_ws(str, pos + 1)
  end
end

parse_value = function(str, pos, depth, opts)
  if depth > 1000 then decode_error(str, pos, "nesting too deep") end
  local c = sub(str, pos, pos)
  if c == "{" then return parse_object(str, pos, depth, opts)
  elseif c == "[" then return parse_array(str, pos, depth, opts)
  elseif c == '"' then return parse_string(str, pos)
  elseif c == "-" or find(c, "^%d") then return parse_number(str, pos)
  elseif sub(str, pos, pos + 3) == "true" then return true, pos + 4
  elseif sub(str, pos, pos + 4) == "false" then return false, pos + 5
  elseif sub(str, pos, pos + 3) == "null" then return nil, pos + 4
  end
  decode_error(str, pos, "unexpected " .. describe(str, pos))
end

function json.decode(str, opts)
  if type(str) ~= "string" then
    error("json.decode: expected a string, got " .. type(str), 2)
  end
  opts = opts or {}
  local ok, v, pos = pcall(function()
    local p = skip_ws(str, 1)
    local val, np = parse_value(str, p, 0, opts)
    np = skip_ws(str, np)
    if np <= #str then decode_error(str, np, "unexpected trailing " .. describe(str, np)) end
    return val, np
  end)
  if not ok then
    if getmetatable(v) == DecodeError then error(v.msg, 2) end
    error(v, 2)
  end
  if v == nil then v = opts.null end
  return v
end

package.loaded["json"] = json
package.loaded[".json"] = json
_G.json = json
return json
