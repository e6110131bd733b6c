-- base64.lua: the `.base64` module (Lua 5.3), written for this project.
--   base64.encode(s [, alphabet [, nopad]])   standard alphabet (RFC 4648 §4) with "=" padding
--   base64.decode(s [, alphabet])             ignores whitespace; padding optional; errors on
--                                             other characters
--   base64.makeencoder(c62, c63, cpad), base64.makedecoder(c62, c63, cpad)
--                                             alphabets with other last two characters / pad
--                                             (base64.url = makeencoder("-", "_"))

local base64 = { _version = "1.0" }

local CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

function base64.makeencoder(c62, c63, cpad)
  local enc = {}
  for i = 1, 62 do enc[i - 1] = CHARS:sub(i, i) end
  enc[62], enc[63], enc.pad = c62 or "+", c63 or "/", cpad or "="
  return enc
end

function base64.makedecoder(c62, c63, cpad)
  local enc = base64.makeencoder(c62, c63, cpad)
  local dec = { pad = enc.pad }
  for i = 0, 63 do dec[enc[i]:byte()] = i end
  return dec
end

local DEFAULT_ENC = base64.makeencoder()
local DEFAULT_DEC = base64.makedecoder()

function base64.encode(s, enc, nopad)
  if type(s) ~= "string" then error("base64.encode: expected a string, got " .. type(s), 2) end
  enc = enc or DEFAULT_ENC
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    out[#out + 1] = enc[(n >> 18) & 63] .. enc[(n >> 12) & 63]
      .. (b and enc[(n >> 6) & 63] or (nopad and "" or enc.pad))
      .. (c and enc[n & 63] or (nopad and "" or enc.pad))
  end
  return table.concat(out)
end

function base64.decode(s, dec)
  if type(s) ~= "string" then error("base64.decode: expected a string, got " .. type(s), 2) end
  dec = dec or DEFAULT_DEC
  local out, n, bits = {}, 0, 0
  local pad = dec.pad and dec.pad:byte()
  for i = 1, #s do
    local ch = s:byte(i)
    if ch == pad then break end
    local v = dec[ch]
    if v == nil then
      if not s:sub(i, i):match("%s") then
        error("base64.decode: invalid character '" .. s:sub(i, i) .. "' at byte " .. i, 2)
      end
    else
      n = ((n << 6) | v) & 0xFFFFFF
      bits = bits + 6
      if bits >= 8 then
        bits = bits - 8
        out[#out + 1] = string.char((n >> bits) & 255)
      end
    end
  end
  return table.concat(out)
end

base64.url = { encoder = base64.makeencoder("-", "_"), decoder = base64.makedecoder("-", "_") }

package.loaded["base64"] = base64
package.loaded[".base64"] = base64
return base64
