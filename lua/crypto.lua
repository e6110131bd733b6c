-- crypto.lua: the `.crypto` module (Lua 5.3) with aos's API, written for this project.
-- The primitives are native (process/src/crypto_native.rs, RustCrypto crates) behind the
-- global `__crypto`; this file adapts arguments and results.
--
-- Inputs (data, keys, passwords, salts) may be strings, byte arrays ({97, 111}) or streams
-- (crypto.utils.stream.fromString(s): a function returning one byte per call, nil at the
-- end). Results have .asString() (raw bytes), .asHex() (lower-case hex) and .asBytes().
--
--   crypto.digest.md5/sha1/sha2_256/sha2_512/sha3_256/sha3_512/keccak256/keccak512(data)
--   crypto.digest.blake2b(data [, outlen = 64 [, key = ""]])
--   crypto.mac.createHmac(data, key [, algorithm = "sha1"])      sha1, sha256, sha512
--   crypto.kdf.pbkdf2(password, salt, iterations, keyLen [, digest = "sha1"])
--   crypto.cipher.aes.encrypt(data, key [, iv = "" [, mode = "CBC" [, keyLength = 128]]])
--   crypto.cipher.aes.decrypt(hexCipher, key [, iv [, mode [, keyLength]]])
--       modes ECB, CBC, CFB, OFB, CTR; data zero-padded to 16 bytes, key and iv zero-padded
--       (or cut) to keyLength/8 and 16 bytes; encrypt's .asHex() is upper case, as aos's
--   crypto.random(min, max, seed) / crypto.utils.random.random(...)   deterministic
--   crypto.utils.hex.stringToHex/hexToString, crypto.utils.array.*, crypto.utils.stream.*,
--   crypto.utils.queue()

local crypto = { _version = "0.0.1", digest = {}, mac = {}, kdf = {}, cipher = {}, utils = {} }

local function native(name, ...)
  local n = rawget(_G, "__crypto")
  if type(n) ~= "table" then error("crypto: native primitives not available in this host", 3) end
  local ok, v = n[name](...)
  if not ok then error(v, 3) end
  return v
end

local function toHex(s) return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end)) end
local function fromHex(h)
  if type(h) ~= "string" or #h % 2 ~= 0 or h:find("[^%x]") then error("crypto: invalid hex string", 3) end
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- string | byte array | stream -> string
local function bytes(x, what)
  local t = type(x)
  if t == "string" then return x end
  if t == "number" then return tostring(x) end
  if t == "nil" then return "" end
  if t == "table" then
    local parts = {}
    for i = 1, #x do parts[i] = string.char(x[i] & 255) end
    return table.concat(parts)
  end
  if t == "function" then
    local parts = {}
    for b in x do parts[#parts + 1] = string.char(b & 255) end
    return table.concat(parts)
  end
  error("crypto: " .. (what or "data") .. " must be a string, a byte array or a stream, got " .. t, 3)
end

local function result(raw, upperHex)
  return {
    asString = function() return raw end,
    asHex = function() local h = toHex(raw) return upperHex and h:upper() or h end,
    asBytes = function() return { raw:byte(1, -1) } end,
  }
end

for _, name in ipairs { "md5", "sha1", "sha2_256", "sha2_512", "sha3_256", "sha3_512", "keccak256", "keccak512" } do
  crypto.digest[name] = function(data) return result(native("digest", name, bytes(data))) end
end
crypto.digest.sha256 = crypto.digest.sha2_256

function crypto.digest.blake2b(data, outlen, key)
  return result(native("blake2b", bytes(data), math.tointeger(outlen or 64) or 64, bytes(key or "", "key")))
end

function crypto.mac.createHmac(data, key, algorithm)
  return result(native("hmac", algorithm or "sha1", bytes(key, "key"), bytes(data)))
end

function crypto.kdf.pbkdf2(password, salt, iterations, keyLen, digest)
  return result(native("pbkdf2", digest or "sha1", bytes(password, "password"), bytes(salt, "salt"),
    math.tointeger(iterations) or 0, math.tointeger(keyLen) or 0))
end

local function fit(s, n) if #s >= n then return s:sub(1, n) end return s .. string.rep("\0", n - #s) end

local function aesArgs(key, iv, mode, keyLength)
  keyLength = math.tointeger(keyLength or 128)
  if keyLength ~= 128 and keyLength ~= 192 and keyLength ~= 256 then
    error("crypto.cipher.aes: keyLength must be 128, 192 or 256", 3)
  end
  return fit(bytes(key, "key"), keyLength // 8), fit(bytes(iv or "", "iv"), 16), (mode or "CBC"):upper()
end

crypto.cipher.aes = {
  encrypt = function(data, key, iv, mode, keyLength)
    local k, v, m = aesArgs(key, iv, mode, keyLength)
    local d = bytes(data)
    if #d % 16 ~= 0 or #d == 0 then d = d .. string.rep("\0", 16 - #d % 16) end
    return result(native("aes", true, m, k, v, d), true)
  end,
  decrypt = function(cipher, key, iv, mode, keyLength)
    local k, v, m = aesArgs(key, iv, mode, keyLength)
    return result(native("aes", false, m, k, v, fromHex(cipher)), true)
  end,
}

-- utils
crypto.utils.hex = {
  stringToHex = function(s) return toHex(bytes(s)) end,
  hexToString = function(h) return fromHex(h) end,
}

local stream = {}
function stream.fromString(s)
  local i = 0
  return function()
    i = i + 1
    if i <= #s then return s:byte(i) end
  end
end
function stream.toString(st) return bytes(st) end
function stream.fromArray(a) return stream.fromString(bytes(a)) end
function stream.toArray(st) local s = bytes(st) return { s:byte(1, -1) } end
function stream.fromHex(h) return stream.fromString(fromHex(h)) end
function stream.toHex(st) return toHex(bytes(st)) end
crypto.utils.stream = stream

local array = {}
function array.size(a) return #a end
function array.fromString(s) return { s:byte(1, -1) } end
function array.toString(a) return bytes(a) end
function array.fromStream(st) return { bytes(st):byte(1, -1) } end
function array.toStream(a) return stream.fromString(bytes(a)) end
function array.fromHex(h) return { fromHex(h):byte(1, -1) } end
function array.toHex(a) return toHex(bytes(a)) end
function array.concat(a, b) local out = table.move(a, 1, #a, 1, {}) return table.move(b, 1, #b, #out + 1, out) end
function array.truncate(a, n) return table.move(a, 1, math.min(n, #a), 1, {}) end
function array.XOR(a, b)
  local out = {}
  for i = 1, math.min(#a, #b) do out[i] = a[i] ~ b[i] end
  return out
end
function array.copy(a) return table.move(a, 1, #a, 1, {}) end
function array.slice(a, start, stop) return table.move(a, start + 1, stop, 1, {}) end
function array.substitute(input, sbox)
  local out = {}
  for i, v in ipairs(input) do out[i] = sbox[v] end
  return out
end
function array.permute(input, pbox)
  local out = {}
  for i, v in ipairs(pbox) do out[i] = input[v] end
  return out
end
crypto.utils.array = array

function crypto.utils.queue()
  local items, head, tail = {}, 1, 0
  local q = {}
  function q.push(v) tail = tail + 1; items[tail] = v end
  function q.pop()
    if head > tail then return nil end
    local v = items[head]; items[head] = nil; head = head + 1
    return v
  end
  function q.size() return tail - head + 1 end
  function q.getHead() return items[head] end
  function q.getTail() return items[tail] end
  function q.reset() items, head, tail = {}, 1, 0 end
  return q
end

-- Deterministic random integers in [min, max] (defaults 0 .. 2^31 - 1) from a seed
-- (default: math.random, itself deterministic per process): SHA-256 of seed and a counter.
local counter = 0
function crypto.random(min, max, seed)
  min = math.tointeger(min or 0) or 0
  max = math.tointeger(max or 2147483647) or 2147483647
  if max < min then error("crypto.random: max < min", 2) end
  seed = seed ~= nil and tostring(seed) or tostring(math.random(0, 4294967295))
  counter = counter + 1
  local h = native("digest", "sha2_256", seed .. "\0" .. counter)
  local n = string.unpack(">I7", h) -- 56 bits
  return min + n % (max - min + 1)
end
crypto.utils.random = { random = crypto.random }

package.loaded["crypto"] = crypto
package.loaded[".crypto"] = crypto
return crypto
