-- bint.lua: fixed-width arbitrary-precision integers for the `.bint` module (Lua 5.3).
--
-- Written for this project (no aos or lua-bint code copied), with the API AO processes
-- use: `local bint = require(".bint")(256)` gives a class of 256-bit two's-complement
-- integers (any multiple of 32 bits; wrapping arithmetic like Lua's own integers).
--
--   bint(x), bint.new(x)        from a bint, an integer, an integral float, or a string
--                               ("123", "-5", "0x1f", "0b101"); anything else is an error
--   bint.fromstring(s), bint.frombase(s, base), bint.frominteger(i), bint.fromuinteger(i)
--                               (nil when s is not a number)
--   bint.zero(), bint.one(), bint.maxinteger(), bint.mininteger()
--   tostring(x), bint.tobase(x [, base [, unsigned]]), bint.tonumber(x) (an integer when it
--   fits in 64 bits, else a float), bint.tointeger(x) (low 64 bits, wrapping)
--   operators: + - * // % ^ (integer exponent) / (float division) unary - & | ~ << >>
--   == < <= (with bints or Lua integers on either side), .. (as text)
--   bint.eq/lt/le/ult/ule, bint.abs, bint.max/min, bint.ipow, bint.udivmod, bint.tdivmod,
--   bint.idivmod, bint.udiv/umod/tdiv/tmod, bint.iszero/isone/isminusone/isneg/ispos/
--   iseven/isodd, bint.isbint, bint.isintegral, bint.inc/dec, bint.__add etc. as functions
-- A float operand makes + - * / ^ give a float (as Lua mixes integers and floats).

local modules = {}

local function newModule(bits)
  bits = math.tointeger(bits or 256)
  if not bits or bits < 64 or bits % 32 ~= 0 then
    error("bint: bits must be a multiple of 32, at least 64", 3)
  end
  local N = bits // 32
  local MASK = 0xFFFFFFFF
  local bint = { bits = bits }
  bint.__index = bint

  local function raw()
    local t = setmetatable({}, bint)
    for i = 1, N do t[i] = 0 end
    return t
  end
  local function isbint(x) return getmetatable(x) == bint end
  local function copy(x)
    local t = setmetatable({}, bint)
    for i = 1, N do t[i] = x[i] end
    return t
  end

  local function frominteger(n)
    local t = raw()
    t[1] = n & MASK
    t[2] = (n >> 32) & MASK
    local fill = n < 0 and MASK or 0
    for i = 3, N do t[i] = fill end
    return t
  end

  local function isneg(x) return x[N] & 0x80000000 ~= 0 end
  local function iszero(x)
    for i = 1, N do if x[i] ~= 0 then return false end end
    return true
  end

  local function negate(x)
    local t = raw()
    local carry = 1
    for i = 1, N do
      local v = (~x[i] & MASK) + carry
      t[i] = v & MASK
      carry = v >> 32
    end
    return t
  end

  local function fromfloat(f)
    if f ~= f or f == math.huge or f == -math.huge then return nil end
    if f ~= math.floor(f) then return nil end
    local i = math.tointeger(f)
    if i then return frominteger(i) end
    local neg = f < 0
    if neg then f = -f end
    local t = raw()
    for k = 1, N do
      t[k] = math.tointeger(math.fmod(f, 4294967296.0))
      f = math.floor(f / 4294967296.0)
    end
    if neg then t = negate(t) end
    return t
  end

  -- x*m + a in place (m, a < 2^32)
  local function muladdsmall(x, m, a)
    local carry = a
    for i = 1, N do
      local v = x[i] * m + carry
      x[i] = v & MASK
      carry = v >> 32
    end
  end

  -- x // d, x % d for unsigned x and 0 < d < 2^31
  local function divsmall(x, d)
    local q = raw()
    local r = 0
    for i = N, 1, -1 do
      local cur = (r << 32) | x[i]
      q[i] = cur // d
      r = cur % d
    end
    return q, r
  end

  local DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

  function bint.frombase(s, base)
    if type(s) ~= "string" then return nil end
    base = base or 10
    if math.type(base) ~= "integer" or base < 2 or base > 36 then return nil end
    s = s:lower()
    local neg = false
    local sign = s:sub(1, 1)
    if sign == "-" or sign == "+" then neg = sign == "-"; s = s:sub(2) end
    if s == "" then return nil end
    local t = raw()
    for i = 1, #s do
      local d = DIGITS:find(s:sub(i, i), 1, true)
      if not d or d > base then return nil end
      muladdsmall(t, base, d - 1)
    end
    if neg then t = negate(t) end
    return t
  end

  function bint.fromstring(s)
    if type(s) ~= "string" then return nil end
    s = s:match("^%s*(.-)%s*$")
    local sign, rest = s:match("^([+-]?)(.*)$")
    local prefix = rest:sub(1, 2):lower()
    local t
    if prefix == "0x" then t = bint.frombase(rest:sub(3), 16)
    elseif prefix == "0b" then t = bint.frombase(rest:sub(3), 2)
    else t = bint.frombase(rest, 10) end
    if t and sign == "-" then t = negate(t) end
    return t
  end

  function bint.frominteger(x)
    if math.type(x) == "integer" then return frominteger(x) end
    if math.type(x) == "float" then return fromfloat(x) end
    return nil
  end

  function bint.fromuinteger(x)
    local t = bint.frominteger(x)
    if t and math.type(x) == "integer" then for i = 3, N do t[i] = 0 end end
    return t
  end

  local function tobint(x)
    if isbint(x) then return x end
    local tx = type(x)
    if tx == "number" then
      if math.type(x) == "integer" then return frominteger(x) end
      return fromfloat(x)
    end
    if tx == "string" then return bint.fromstring(x) end
    return nil
  end

  function bint.new(x)
    if isbint(x) then return copy(x) end
    local t = tobint(x)
    if t == nil then error("bint: value cannot be represented as a " .. bits .. "-bit integer: " .. tostring(x), 2) end
    return t
  end
  bint.convert = tobint
  bint.isbint = isbint
  function bint.isintegral(x) return isbint(x) or math.type(x) == "integer" end

  function bint.zero() return raw() end
  function bint.one() local t = raw() t[1] = 1 return t end
  function bint.maxinteger()
    local t = raw()
    for i = 1, N do t[i] = MASK end
    t[N] = 0x7FFFFFFF
    return t
  end
  function bint.mininteger()
    local t = raw()
    t[N] = 0x80000000
    return t
  end

  local function need(x, op)
    local t = tobint(x)
    if t == nil then error("bint: attempt to perform " .. op .. " on a " .. type(x) .. " value", 3) end
    return t
  end

  local function add(a, b)
    local t = raw()
    local carry = 0
    for i = 1, N do
      local v = a[i] + b[i] + carry
      t[i] = v & MASK
      carry = v >> 32
    end
    return t
  end

  local function sub(a, b)
    local t = raw()
    local borrow = 0
    for i = 1, N do
      local v = a[i] - b[i] - borrow
      if v < 0 then v = v + 4294967296; borrow = 1 else borrow = 0 end
      t[i] = v
    end
    return t
  end

  local function mul(a, b)
    local t = raw()
    for i = 1, N do
      local ai = a[i]
      if ai ~= 0 then
        local carry = 0
        for j = 1, N - i + 1 do
          local k = i + j - 1
          local p = ai * b[j] + t[k] + carry -- < 2^64, read as unsigned below
          t[k] = p & MASK
          carry = p >> 32
        end
      end
    end
    return t
  end

  -- unsigned compare: -1, 0, 1
  local function ucmp(a, b)
    for i = N, 1, -1 do
      if a[i] ~= b[i] then return a[i] < b[i] and -1 or 1 end
    end
    return 0
  end

  local function scmp(a, b)
    local na, nb = isneg(a), isneg(b)
    if na ~= nb then return na and -1 or 1 end
    return ucmp(a, b)
  end

  local function shl1(x)
    local carry = 0
    for i = 1, N do
      local v = (x[i] << 1) | carry
      x[i] = v & MASK
      carry = v >> 32
    end
  end

  local function udivmod(a, b)
    if iszero(b) then error("attempt to perform 'n//0'", 3) end
    local small = true
    for i = 2, N do if b[i] ~= 0 then small = false break end end
    if small and b[1] < 0x80000000 then
      local q, r = divsmall(a, b[1])
      local rt = raw()
      rt[1] = r
      return q, rt
    end
    local q, r = raw(), raw()
    for i = N, 1, -1 do
      for bit = 31, 0, -1 do
        shl1(r)
        r[1] = r[1] | ((a[i] >> bit) & 1)
        if ucmp(r, b) >= 0 then
          r = sub(r, b)
          q[i] = q[i] | (1 << bit)
        end
      end
    end
    return q, r
  end

  local function absv(x) if isneg(x) then return negate(x) end return x end

  local function tdivmod(a, b)
    local q, r = udivmod(absv(a), absv(b))
    if isneg(a) ~= isneg(b) then q = negate(q) end
    if isneg(a) then r = negate(r) end
    return q, r
  end

  local function idivmod(a, b)
    local q, r = tdivmod(a, b)
    if not iszero(r) and isneg(a) ~= isneg(b) then
      q = sub(q, bint.one())
      r = add(r, b)
    end
    return q, r
  end

  function bint.tonumber(x)
    if not isbint(x) then return tonumber(x) end
    -- fits in a signed 64-bit integer?
    local fill = isneg(x) and MASK or 0
    local fits = (x[2] & 0x80000000 ~= 0) == isneg(x)
    for i = 3, N do if x[i] ~= fill then fits = false break end end
    if fits then return x[1] | (x[2] << 32) end
    local neg = isneg(x)
    local v = neg and negate(x) or x
    local f = 0.0
    for i = N, 1, -1 do f = f * 4294967296.0 + v[i] end
    return neg and -f or f
  end

  function bint.tointeger(x)
    if not isbint(x) then
      local t = tobint(x)
      if not t then return nil end
      x = t
    end
    return x[1] | (x[2] << 32)
  end
  bint.touinteger = bint.tointeger

  function bint.tobase(x, base, unsigned)
    x = need(x, "tobase")
    base = base or 10
    if math.type(base) ~= "integer" or base < 2 or base > 36 then return nil end
    if unsigned == nil then unsigned = base ~= 10 end
    local neg = not unsigned and isneg(x)
    local v = neg and negate(x) or copy(x)
    if iszero(v) then return "0" end
    local out = {}
    -- peel several digits at once: the largest power of base below 2^31
    local chunk, width = base, 1
    while chunk * base < 0x80000000 do chunk = chunk * base; width = width + 1 end
    while not iszero(v) do
      local r
      v, r = divsmall(v, chunk)
      local digits = {}
      for k = width, 1, -1 do
        local d = r % base
        digits[k] = DIGITS:sub(d + 1, d + 1)
        r = r // base
      end
      out[#out + 1] = table.concat(digits)
    end
    -- most significant chunk last: reverse and strip leading zeros
    local s = {}
    for i = #out, 1, -1 do s[#s + 1] = out[i] end
    local text = table.concat(s):gsub("^0+", "")
    if text == "" then text = "0" end
    return (neg and "-" or "") .. text
  end

  local function isfloat(x) return math.type(x) == "float" end
  local function fnum(x) if isbint(x) then return bint.tonumber(x) + 0.0 end return x end

  function bint.__add(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) + fnum(b) end
    return add(need(a, "arithmetic"), need(b, "arithmetic"))
  end
  function bint.__sub(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) - fnum(b) end
    return sub(need(a, "arithmetic"), need(b, "arithmetic"))
  end
  function bint.__mul(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) * fnum(b) end
    return mul(need(a, "arithmetic"), need(b, "arithmetic"))
  end
  function bint.__idiv(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) // fnum(b) end
    return (idivmod(need(a, "arithmetic"), need(b, "arithmetic")))
  end
  function bint.__mod(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) % fnum(b) end
    local _, r = idivmod(need(a, "arithmetic"), need(b, "arithmetic"))
    return r
  end
  function bint.__div(a, b) return fnum(need(a, "arithmetic")) / fnum(need(b, "arithmetic")) end
  function bint.__unm(a) return negate(a) end

  function bint.ipow(x, y)
    x, y = need(x, "exponentiation"), need(y, "exponentiation")
    if isneg(y) then
      -- only 1 and -1 have integer inverses
      if ucmp(absv(x), bint.one()) == 0 then
        if isneg(x) and (y[1] & 1) == 1 then return copy(x) end
        return bint.one()
      end
      error("bint.ipow: negative exponent", 2)
    end
    local result, base = bint.one(), copy(x)
    local e = copy(y)
    while not iszero(e) do
      if e[1] & 1 == 1 then result = mul(result, base) end
      e = divsmall(e, 2)
      if not iszero(e) then base = mul(base, base) end
    end
    return result
  end
  function bint.__pow(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) ^ fnum(b) end
    return bint.ipow(a, b)
  end

  local function bitwise(op)
    return function(a, b)
      a, b = need(a, "bitwise operation"), need(b, "bitwise operation")
      local t = raw()
      for i = 1, N do t[i] = op(a[i], b[i]) & MASK end
      return t
    end
  end
  bint.__band = bitwise(function(x, y) return x & y end)
  bint.__bor = bitwise(function(x, y) return x | y end)
  bint.__bxor = bitwise(function(x, y) return x ~ y end)
  function bint.__bnot(a)
    local t = raw()
    for i = 1, N do t[i] = ~a[i] & MASK end
    return t
  end
  local function shift(x, n) -- logical; n > 0 left, n < 0 right
    local t = raw()
    if n >= bits or n <= -bits then return t end
    if n >= 0 then
      local limbs, b = n // 32, n % 32
      for i = N, 1, -1 do
        local src = i - limbs
        if src >= 1 then
          local v = (x[src] << b) & MASK
          if b > 0 and src - 1 >= 1 then v = v | (x[src - 1] >> (32 - b)) end
          t[i] = v
        end
      end
    else
      n = -n
      local limbs, b = n // 32, n % 32
      for i = 1, N do
        local src = i + limbs
        if src <= N then
          local v = x[src] >> b
          if b > 0 and src + 1 <= N then v = v | ((x[src + 1] << (32 - b)) & MASK) end
          t[i] = v
        end
      end
    end
    return t
  end
  function bint.__shl(a, n) return shift(need(a, "shift"), bint.tointeger(n)) end
  function bint.__shr(a, n) return shift(need(a, "shift"), -bint.tointeger(n)) end

  function bint.__eq(a, b)
    local x, y = tobint(a), tobint(b)
    return x ~= nil and y ~= nil and ucmp(x, y) == 0
  end
  function bint.__lt(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) < fnum(b) end
    return scmp(need(a, "comparison"), need(b, "comparison")) < 0
  end
  function bint.__le(a, b)
    if isfloat(a) or isfloat(b) then return fnum(a) <= fnum(b) end
    return scmp(need(a, "comparison"), need(b, "comparison")) <= 0
  end
  function bint.__tostring(x) return bint.tobase(x, 10) end
  function bint.__concat(a, b)
    local function s(v) return isbint(v) and bint.tobase(v, 10) or tostring(v) end
    return s(a) .. s(b)
  end

  bint.eq = bint.__eq
  bint.lt = bint.__lt
  bint.le = bint.__le
  function bint.ult(a, b) return ucmp(need(a, "comparison"), need(b, "comparison")) < 0 end
  function bint.ule(a, b) return ucmp(need(a, "comparison"), need(b, "comparison")) <= 0 end
  function bint.abs(x) return copy(absv(need(x, "abs"))) end
  function bint.max(a, b) a, b = need(a, "max"), need(b, "max") return copy(scmp(a, b) >= 0 and a or b) end
  function bint.min(a, b) a, b = need(a, "min"), need(b, "min") return copy(scmp(a, b) <= 0 and a or b) end
  function bint.udivmod(a, b) return udivmod(need(a, "division"), need(b, "division")) end
  function bint.udiv(a, b) return (udivmod(need(a, "division"), need(b, "division"))) end
  function bint.umod(a, b) local _, r = udivmod(need(a, "division"), need(b, "division")) return r end
  function bint.tdivmod(a, b) return tdivmod(need(a, "division"), need(b, "division")) end
  function bint.tdiv(a, b) return (tdivmod(need(a, "division"), need(b, "division"))) end
  function bint.tmod(a, b) local _, r = tdivmod(need(a, "division"), need(b, "division")) return r end
  function bint.idivmod(a, b) return idivmod(need(a, "division"), need(b, "division")) end
  function bint.iszero(x) return iszero(need(x, "test")) end
  function bint.isone(x) return ucmp(need(x, "test"), bint.one()) == 0 end
  function bint.isminusone(x) return ucmp(need(x, "test"), negate(bint.one())) == 0 end
  function bint.isneg(x) return isneg(need(x, "test")) end
  function bint.ispos(x) x = need(x, "test") return not isneg(x) and not iszero(x) end
  function bint.iseven(x) return need(x, "test")[1] & 1 == 0 end
  function bint.isodd(x) return need(x, "test")[1] & 1 == 1 end
  function bint.inc(x) return add(need(x, "inc"), bint.one()) end
  function bint.dec(x) return sub(need(x, "dec"), bint.one()) end

  return setmetatable(bint, { __call = function(_, x) return bint.new(x) end })
end

local function module(bits)
  bits = bits or 256
  local m = modules[bits]
  if not m then
    m = newModule(bits)
    modules[bits] = m
  end
  return m
end

package.loaded["bint"] = module
package.loaded[".bint"] = module
return module
