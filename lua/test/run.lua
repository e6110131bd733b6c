-- lua/test/run.lua: tests for the Lua process runtime, plain Lua 5.3.
-- Run from anywhere:  lua5.3 lua/test/run.lua
-- Loads the runtime files in the embed order and drives the global handle(msg, env).

local write = io.write
local dir = (arg and arg[0] or ""):match("^(.*)[/\\]test[/\\][^/\\]*$") or "lua"
local EMBED_ORDER = { "json.lua", "utils.lua", "stringify.lua", "base64.lua", "bint.lua",
  "crypto.lua", "handlers.lua", "ao.lua", "llama.lua", "process.lua" }

-- originals, restored before each fresh load of the runtime
local orig = {
  print = print, time = os.time, date = os.date, exit = os.exit,
  random = math.random, randomseed = math.randomseed,
}

local function fresh()
  print, os.time, os.date, os.exit = orig.print, orig.time, orig.date, orig.exit
  math.random, math.randomseed = orig.random, orig.randomseed
  for _, g in ipairs { "json", "Handlers", "ao", "Llama", "handle", "Owner", "Inbox",
    "MaxInboxCount", "Spawned", "CurrentTimestamp", "__llama", "Prompt", "FormatValue",
    "Utils", "Colors", "Bell", "Dump", "Errors", "Name", "Version", "Send", "Spawn", "Assign",
    "Receive" } do
    _G[g] = nil
  end
  for _, name in ipairs { "json", ".json", "handlers", ".handlers", "ao", ".ao", "llama",
    ".llama", "process", ".process", "utils", ".utils", "stringify", ".stringify", "pretty",
    ".pretty", "dump", ".dump", "base64", ".base64", "bint", ".bint", "crypto", ".crypto" } do
    package.loaded[name] = nil
  end
  for _, f in ipairs(EMBED_ORDER) do
    local chunk = assert(loadfile(dir .. "/" .. f))
    chunk()
  end
end

---------------------------------------------------------------------------
-- tiny test framework
---------------------------------------------------------------------------
local passed, failed = 0, 0
local tests = {}
local function test(name, fn) tests[#tests + 1] = { name = name, fn = fn } end

local function fmt(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function eq(actual, expected, what)
  if actual ~= expected then
    error((what or "value") .. ": expected " .. fmt(expected) .. ", got " .. fmt(actual), 2)
  end
end

local function ok(cond, what)
  if not cond then error("assertion failed: " .. (what or "?"), 2) end
end

local function contains(s, sub, what)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    error((what or "string") .. ": expected to contain " .. fmt(sub) .. ", got " .. fmt(s), 2)
  end
end

local function raises(fn, sub, what)
  local good, err = pcall(fn)
  if good then error((what or "call") .. ": expected an error containing " .. fmt(sub), 2) end
  if sub and not tostring(err):find(sub, 1, true) then
    error((what or "call") .. ": expected error containing " .. fmt(sub) .. ", got " .. fmt(tostring(err)), 2)
  end
  return err
end

---------------------------------------------------------------------------
-- message helpers
---------------------------------------------------------------------------
local PROCESS = "PROCESS_ID_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
local MODULE = "MODULE_ID_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
local OWNER = "OWNER_WALLET_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
local OTHER = "OTHER_WALLET_DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD"
local TXID = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_x" -- 43 chars
local TOKID = "tokenizer0tokenizer0tokenizer0tokenizer0tok"

local envTable = {
  Process = { Id = PROCESS, Owner = OWNER, Tags = { { name = "Name", value = "test" } } },
  Module = { Id = MODULE, Owner = OWNER, Tags = {} },
}
local ENV

local counter = 0
-- send{Action=..., Data=..., From=..., Tags={...}} -> decoded result table, raw JSON
local function send(m)
  counter = counter + 1
  local from = m.From or OWNER
  local msg = {
    Id = m.Id or ("MSG" .. counter),
    Owner = m.Owner or from,
    From = from,
    Target = PROCESS,
    Data = m.Data or "",
    Timestamp = m.Timestamp or (1700000000000 + counter),
    ["Block-Height"] = 1000 + counter,
    Tags = {},
  }
  if m.Action then msg.Tags[#msg.Tags + 1] = { name = "Action", value = m.Action } end
  for _, t in ipairs(m.Tags or {}) do msg.Tags[#msg.Tags + 1] = t end
  local raw = handle(json.encode(msg), ENV)
  ok(type(raw) == "string", "handle returns a string")
  return json.decode(raw), raw
end

local function eval(code, from)
  return send { Action = "Eval", Data = code, From = from }
end

local function spawn()
  fresh()
  ENV = json.encode(envTable)
  local r = send { Id = PROCESS, Tags = { { name = "Type", value = "Process" } } }
  eq(r.ok, true, "spawn ok")
  return r
end

local function outData(r) return r.response.Output.data end

local function tagsOf(m)
  local t = {}
  for _, tag in ipairs(m.Tags) do t[tag.name] = tag.value end
  return t
end

---------------------------------------------------------------------------
-- json
---------------------------------------------------------------------------
test("json encodes scalars, integers vs floats", function()
  fresh()
  eq(json.encode(42), "42")
  eq(json.encode(-7), "-7")
  eq(json.encode(2.0), "2.0")
  eq(json.encode(0.5), "0.5")
  eq(json.encode(0.1), "0.1")
  eq(json.encode(1e300), "1e+300")
  eq(json.encode(1 / 3), "0.33333333333333331")
  eq(tonumber(json.encode(1 / 3)), 1 / 3, "float round trip")
  eq(json.encode(math.maxinteger), "9223372036854775807")
  eq(json.encode(true), "true")
  eq(json.encode(nil), "null")
  eq(json.encode(json.null), "null")
  raises(function() json.encode(0 / 0) end, "cannot encode")
  raises(function() json.encode(math.huge) end, "cannot encode")
end)

test("json string escapes and UTF-8", function()
  fresh()
  eq(json.encode("a\"b\\c\n\r\t\b\f"), [["a\"b\\c\n\r\t\b\f"]])
  eq(json.encode("\0\1\31\127"), [["\u0000\u0001\u001f\u007f"]])
  eq(json.encode("/é😀"), "\"/é😀\"", "UTF-8 passes through")
  eq(json.encode("a\255b"), "\"a\239\191\189b\"", "invalid byte -> U+FFFD")
  eq(json.encode("\237\160\128"), "\"\239\191\189\239\191\189\239\191\189\"", "encoded surrogate is invalid")
  eq(json.decode([["\u00e9\u20ac\ud83d\ude00"]]), "é€😀", "\\u escapes and surrogate pair")
  eq(json.decode([["\ud800x"]]), "\239\191\189x", "lone high surrogate -> U+FFFD")
  eq(json.decode([["\udc00"]]), "\239\191\189", "lone low surrogate -> U+FFFD")
  eq(json.decode([["\"\\\/\b\f\n\r\t"]]), "\"\\/\b\f\n\r\t")
  local s = "line1\nline2\t\"q\" \\ \1 é 😀"
  eq(json.decode(json.encode(s)), s, "string round trip")
end)

test("json tables: arrays, objects, empty tables, sorted keys", function()
  fresh()
  eq(json.encode({}), "[]", "empty table is an array")
  eq(json.encode(json.object()), "{}", "json.object() is {}")
  eq(json.encode({ 1, "two", 3.5 }), '[1,"two",3.5]')
  eq(json.encode({ b = 1, a = { c = true }, ["0"] = 0 }), [[{"0":0,"a":{"c":true},"b":1}]])
  eq(json.encode({ [1] = "a", [3] = "c" }), [[{"1":"a","3":"c"}]], "sparse array -> object")
  eq(json.encode({ 1, 2, x = 3 }), [[{"1":1,"2":2,"x":3}]], "mixed -> object")
  raises(function() json.encode({ [true] = 1 }) end, "invalid object key")
  local t = {}; t.self = t
  raises(function() json.encode(t) end, "circular")
  raises(function() json.encode({ f = print }) end, "function")
  -- decoded {} and [] keep their kind
  eq(json.encode(json.decode('{"a":{},"b":[],"c":[{}]}')), '{"a":{},"b":[],"c":[{}]}')
end)

test("json decode: numbers, literals, nesting, round trip", function()
  fresh()
  local v = json.decode(' { "i": 10, "f": 1.5, "e": 1e3, "n": -0.25, "big": 12345678901234, '
    .. '"t": true, "fa": false, "nu": null, "arr": [1, [2, [3]]], "s": "x" } ')
  eq(math.type(v.i), "integer"); eq(v.i, 10)
  eq(math.type(v.f), "float"); eq(v.f, 1.5)
  eq(math.type(v.e), "float"); eq(v.e, 1000.0)
  eq(v.n, -0.25); eq(v.big, 12345678901234)
  eq(v.t, true); eq(v.fa, false); eq(v.nu, nil)
  eq(v.arr[2][2][1], 3)
  eq(json.decode("[1,null,3]", { null = json.null })[2], json.null, "opts.null")
  local doc = { list = { 1, 2.5, "x", { y = false } }, name = "n\"q", nested = { a = { b = { c = {} } } } }
  local once = json.encode(doc)
  eq(json.encode(json.decode(once)), once, "encode(decode(x)) == x")
end)

test("json decode errors carry a position", function()
  fresh()
  contains(raises(function() json.decode('{"a":1,}') end), "line 1 column 8")
  contains(raises(function() json.decode('[1,\n  2,\n  x]') end), "line 3 column 3")
  contains(raises(function() json.decode('"abc') end), "unterminated string")
  contains(raises(function() json.decode('01') end), "leading zero")
  contains(raises(function() json.decode('[1] 2') end), "trailing")
  contains(raises(function() json.decode('"a\nb"') end), "control character")
  contains(raises(function() json.decode('"\\x"') end), "invalid escape")
  contains(raises(function() json.decode('') end), "end of input")
  contains(raises(function() json.decode(5) end), "expected a string")
end)

---------------------------------------------------------------------------
-- process: Eval, owner, output
---------------------------------------------------------------------------
test("spawn sets Owner; require works", function()
  spawn()
  eq(Owner, OWNER)
  eq(require("json"), json); eq(require("ao"), ao); eq(require("handlers"), Handlers)
  eq(require("llama"), Llama)
  eq(ao.id, PROCESS); eq(ao._module, MODULE)
end)

test("Owner defaults to env.Process.Owner without a spawn message", function()
  fresh()
  ENV = json.encode(envTable)
  local r = eval("return Owner")
  eq(r.ok, true); eq(outData(r), OWNER)
end)

test("Eval arithmetic and printing", function()
  spawn()
  local r = eval("1 + 1")
  eq(r.ok, true); eq(outData(r), "2")
  -- aos's prompt: Name@aos-<version>[Inbox:N]> (colored)
  contains(r.response.Output.prompt, "test\27[90m@"); contains(r.response.Output.prompt, "[Inbox:")
  eq(r.response.Output.print, nil, "Eval output is not a handler print")
  eq(outData(eval("return 7 // 2, 7 / 2")), "3\t3.5")
  eq(outData(eval('print("hello") print("a", 1, nil) return "done"')), "hello\na\t1\tnil\ndone")
  eq(outData(eval("x = 5")), "", "statement without result")
  eq(outData(eval("return x * 2")), "10")
  eq(outData(eval("return {1, 2, 3}")), "{ \27[34m1\27[0m, \27[34m2\27[0m, \27[34m3\27[0m }", "tables as aos prints them")
  eq(outData(eval("return {b = 'x', a = {true}}")),
    '{\n  \27[31ma\27[0m = { \27[34mtrue\27[0m },\n  \27[31mb\27[0m = \27[32m"x"\27[0m\n}')
  eq(outData(eval("return json.encode({1, 2, {a = 'b'}})")), '[1,2,{"a":"b"}]')
  contains(outData(eval("return {f = print}")), "\27[0m = function", "functions with tostring")
  eq(outData(eval("print({1, 'a'})")), '{ \27[34m1\27[0m, \27[32m"a"\27[0m }', "print(table)")
  eq(outData(eval("return true")), "true")
  eq(outData(eval("return nil")), "")
end)

test("counter carried across messages", function()
  spawn()
  eval("Counter = 0")
  for i = 1, 3 do
    local r = eval("Counter = Counter + 1 return Counter")
    eq(outData(r), tostring(i))
  end
end)

test("Eval errors become ok=false with the location and printed output", function()
  spawn()
  local r = eval('print("before") error("boom")')
  eq(r.ok, false)
  eq(r.response.Error, "before\n\27[31merror: eval:1: boom\27[0m", "aos's Eval error text")
  eq(outData(r), "before")
  eq(r.response.Messages, nil, "no Messages on error")
  r = eval("local = 1")
  eq(r.ok, false); contains(r.response.Error, "eval:1:")
  r = eval("return nil + 1")
  eq(r.ok, false); contains(r.response.Error, "attempt to perform arithmetic")
  r = eval("error({code = 7})")
  eq(r.ok, false); eq(r.response.Error, '\27[31merror: {"code":7}\27[0m')
end)

test("non-owner Eval is rejected and does not run", function()
  spawn()
  eval("Secret = 1")
  local r = eval("Secret = 2 return 'ran'", OTHER)
  eq(r.ok, false)
  contains(r.response.Error, "Eval rejected")
  eq(outData(r), "")
  eq(Secret, 1, "code did not run")
  eq(#Inbox, 0, "not stored")
end)

test("handle never raises on bad input", function()
  spawn()
  local r = json.decode(handle("{not json", ENV))
  eq(r.ok, false); contains(r.response.Error, "invalid message JSON")
  contains(r.response.Error, "line 1 column 2")
  r = json.decode(handle("[1,2]", ENV))
  eq(r.ok, false); contains(r.response.Error, "must be an object")
  r = json.decode(handle(nil, nil))
  eq(r.ok, false)
  r = json.decode(handle('{"Id":"x","From":"' .. OWNER .. '","Tags":[]}', "{bad"))
  eq(r.ok, false); contains(r.response.Error, "invalid env JSON")
end)

test("tags lifted into fields without overwriting standard fields", function()
  spawn()
  eval([[Handlers.add("probe", "Probe", function(m)
    Seen = { Action = m.Action, Foo = m.Foo, From = m.From, Data = m.Data, TagFoo = m.Tags.Foo,
      n = #m.TagArray, Ts = m.Timestamp, now = os.time() } end)]])
  local r = send { Action = "Probe", Data = "d", From = OTHER, Timestamp = 1700000123456, Tags = {
    { name = "Foo", value = "bar" }, { name = "From", value = "spoofed" },
    { name = "Data", value = "spoofed" } } }
  eq(r.ok, true)
  eq(Seen.Action, "Probe"); eq(Seen.Foo, "bar"); eq(Seen.TagFoo, "bar")
  eq(Seen.From, OTHER); eq(Seen.Data, "d"); eq(Seen.n, 4)
  eq(Seen.Ts, 1700000123456); eq(Seen.now, 1700000123456, "os.time() in ms, as aos")
end)

---------------------------------------------------------------------------
-- Handlers
---------------------------------------------------------------------------
test("a handler matching a tag ao.sends a reply (Messages and tags)", function()
  spawn()
  local r = eval([[
    Handlers.add("ping", Handlers.utils.hasMatchingTag("Action", "Ping"), function(msg)
      ao.send({ Target = msg.From, Data = "pong:" .. msg.Data, Action = "Pong", Extra = 3,
        Tags = { Color = "red" } })
    end)
    return #Handlers.list]])
  eq(outData(r), "1")
  r = send { Action = "Ping", Data = "hi", From = OTHER }
  eq(r.ok, true)
  local msgs = r.response.Messages
  eq(#msgs, 1, "one message")
  local m = msgs[1]
  eq(m.Target, OTHER); eq(m.Data, "pong:hi")
  local tags = tagsOf(m)
  eq(tags["Data-Protocol"], "ao"); eq(tags.Variant, "ao.TN.1"); eq(tags.Type, "Message")
  eq(tags.Reference, "1"); eq(tags.Action, "Pong"); eq(tags.Extra, "3"); eq(tags.Color, "red")
  eq(m.Tags[1].name, "Data-Protocol", "protocol tags first")
  eq(m.Anchor, "00000000000000000000000000000001")
  eq(#Inbox, 0, "handled messages are not in Inbox")
  -- the reference counter persists
  r = send { Action = "Ping", Data = "again", From = OTHER }
  eq(tagsOf(r.response.Messages[1]).Reference, "2")
end)

test("msg.reply and Handlers.utils.reply", function()
  spawn()
  eval([[Handlers.add("r1", "Ask", function(m) m.reply({ Data = "answer", Action = "Answer" }) end)
    Handlers.add("r2", { Action = "Hello" }, Handlers.utils.reply("hi there"))]])
  local r = send { Action = "Ask", From = OTHER, Tags = { { name = "Reference", value = "9" } } }
  local m = r.response.Messages[1]
  eq(m.Target, OTHER); eq(m.Data, "answer")
  eq(tagsOf(m)["X-Reference"], "9"); eq(tagsOf(m).Action, "Answer")
  r = send { Action = "Hello", From = OTHER }
  eq(r.response.Messages[1].Data, "hi there")
  eq(r.response.Messages[1].Target, OTHER)
end)

test("a handler error gives ok=false with the error text", function()
  spawn()
  eval([[Handlers.add("bad", "Explode", function(m) ao.send({Target = m.From, Data = "x"})
    print("partial") error("kaboom") end)]])
  local r = send { Action = "Explode", From = OTHER }
  eq(r.ok, false)
  contains(r.response.Error, "handler 'bad'")
  contains(r.response.Error, "kaboom")
  contains(r.response.Error, "eval:")
  eq(r.response.Messages, nil)
  contains(outData(r), "partial\n\27[31mError\27[90m handling message")
  contains(r.response.Error, "error:\n")
  -- the process still answers
  eq(outData(eval("return 1 + 2")), "3")
end)

test("handlers continue vs break; default only when nothing broke", function()
  spawn()
  eval([[Log = {}
    Handlers.add("a", function(m) return m.Action == "Go" and "continue" or false end,
      function() Log[#Log + 1] = "a" end)
    Handlers.add("b", function(m) return m.Action == "Go" and 1 or 0 end,
      function() Log[#Log + 1] = "b" end)
    Handlers.add("c", function(m) if m.Stop == "yes" then return "break" end end,
      function() Log[#Log + 1] = "c" end)
    Handlers.add("d", function(m) return true end, function() Log[#Log + 1] = "d" end)
    ]])
  send { Action = "Go", Tags = { { name = "Stop", value = "yes" } }, From = OTHER }
  eq(table.concat(Log, ","), "a,b,c", "break stops at c")
  eq(#Inbox, 0)
  Log = {}
  send { Action = "Go", From = OTHER }
  eq(table.concat(Log, ","), "a,b,d", "true breaks at d")
  Handlers.remove("d")
  Log = {}
  send { Action = "Go", From = OTHER }
  eq(table.concat(Log, ","), "a,b")
  eq(#Inbox, 1, "continue-only matches still reach the default handler")
  -- an invalid pattern result is an error
  Handlers.add("weird", function() return {} end, function() end)
  local r = send { Action = "X", From = OTHER }
  eq(r.ok, false); contains(r.response.Error, "pattern returned a table")
end)

test("Handlers.add replaces by name; prepend, remove, once, before/after", function()
  spawn()
  local f = function() end
  Handlers.add("one", "A", f)
  Handlers.add("two", "B", f)
  Handlers.add("one", "C", f)
  eq(table.concat(Handlers.names(), ","), "one,two")
  eq(Handlers.list[1].pattern, "C", "replaced in place")
  Handlers.prepend("zero", "Z", f)
  Handlers.prepend("two", "B", f)
  eq(table.concat(Handlers.names(), ","), "two,zero,one")
  Handlers.append("three", "D", f)
  Handlers.before("one").add("half", "H", f)
  Handlers.after("one").add("onehalf", "OH", f)
  eq(table.concat(Handlers.names(), ","), "two,zero,half,one,onehalf,three")
  eq(Handlers.remove("zero"), true); eq(Handlers.remove("zero"), false)
  eq(table.concat(Handlers.names(), ","), "two,half,one,onehalf,three")
  raises(function() Handlers.add("x", 42, f) end, "pattern must be")
  raises(function() Handlers.add("x", "A", "nope") end, "handle must be a function")
  raises(function() Handlers.add(nil, "A", f) end, "name must be a string")
  -- once: runs a single time
  spawn()
  eval([[N = 0 Handlers.once("only", "Tick", function() N = N + 1 end)]])
  send { Action = "Tick", From = OTHER }
  send { Action = "Tick", From = OTHER }
  eq(N, 1); eq(#Handlers.list, 0); eq(#Inbox, 1)
  -- Handlers.add(name, fn) matches Action == name
  eval([[Handlers.add("Short", function(m) Short = m.Data end)]])
  send { Action = "Short", Data = "yes", From = OTHER }
  eq(Short, "yes")
end)

test("table patterns: exact, Lua patterns, functions, any-of, Data", function()
  spawn()
  eval([[Hits = {}
    Handlers.add("t1", { Action = "Order", Side = "buy" }, function() Hits[#Hits+1] = "t1" end)
    Handlers.add("t2", { Action = "Order", Qty = "^%d+$" }, function() Hits[#Hits+1] = "t2" end)
    Handlers.add("t3", { Action = { "Sell", "Dump" } }, function() Hits[#Hits+1] = "t3" end)
    Handlers.add("t4", { Action = "Fn", Qty = function(v) return tonumber(v) > 10 end },
      function() Hits[#Hits+1] = "t4" end)
    Handlers.add("t5", Handlers.utils.hasMatchingData("magic"), function() Hits[#Hits+1] = "t5" end)
    Handlers.add("t6", { Action = "Any", Who = "_" }, function() Hits[#Hits+1] = "t6" end)]])
  local function go(action, tags, data)
    Hits = {}
    send { Action = action, Tags = tags, Data = data, From = OTHER }
    return table.concat(Hits, ",")
  end
  eq(go("Order", { { name = "Side", value = "buy" } }), "t1")
  eq(go("Order", { { name = "Side", value = "sell" }, { name = "Qty", value = "12" } }), "t2")
  eq(go("Order", { { name = "Qty", value = "1x" } }), "")
  eq(go("Dump"), "t3")
  eq(go("Fn", { { name = "Qty", value = "11" } }), "t4")
  eq(go("Fn", { { name = "Qty", value = "9" } }), "")
  eq(go("Whatever", nil, "magic"), "t5")
  eq(go("Any", { { name = "Who", value = "me" } }), "t6")
end)

test("default handler keeps an Inbox of the last MaxInboxCount messages", function()
  spawn()
  eq(MaxInboxCount, 10000)
  local r = send { Action = "Note", Data = "first", From = OTHER }
  eq(r.ok, true)
  eq(#Inbox, 1); eq(Inbox[1].Data, "first"); eq(Inbox[1].Action, "Note")
  eq(outData(r), "\27[90mNew Message From \27[32mOTH...DDD\27[90m: \27[90mAction = \27[34mNote\27[0m")
  eq(outData(send { Data = "plain", From = OTHER }),
    "\27[90mNew Message From \27[32mOTH...DDD\27[90m: \27[90mData = \27[34mplain\27[0m")
  eq(#Inbox, 2); table.remove(Inbox)
  eq(outData(eval("return Inbox[1].From")), OTHER)
  MaxInboxCount = 3
  for i = 1, 5 do send { Data = "m" .. i, From = OTHER } end
  eq(#Inbox, 3); eq(Inbox[1].Data, "m3"); eq(Inbox[3].Data, "m5")
end)

---------------------------------------------------------------------------
-- ao
---------------------------------------------------------------------------
test("ao.send data encoding, reserved tags, errors", function()
  spawn()
  local r = eval([[ao.send({ Target = "T1", Data = { a = 1 } })
    ao.send({ Target = "T2", Type = "Custom", Tags = { { name = "K", value = "v1" }, { name = "K", value = "v2" } } })
    return #ao.outbox.Messages]])
  eq(r.ok, true); eq(outData(r), "2")
  local m1, m2 = r.response.Messages[1], r.response.Messages[2]
  eq(m1.Data, '{"a":1}'); eq(tagsOf(m1)["Content-Type"], "application/json")
  eq(m2.Data, "")
  eq(tagsOf(m2).Type, "Message", "reserved tag not overridden")
  local ks = {}
  for _, t in ipairs(m2.Tags) do if t.name == "K" then ks[#ks + 1] = t.value end end
  eq(table.concat(ks, ","), "v1,v2", "repeated tags kept in order")
  r = eval([[ao.send({ Data = "x" })]])
  eq(r.ok, false); contains(r.response.Error, "Target is required")
  r = eval([[ao.send({ Target = "x", Bad = {} })]])
  eq(r.ok, false); contains(r.response.Error, "tag 'Bad'")
end)

test("ao.spawn and ao.assign appear in the response", function()
  spawn()
  local r = eval(string.format([[ao.spawn(%q, { Data = "boot", Name = "child" })
    ao.assign({ Processes = { "P1", "P2" }, Message = "M1" })]], TXID))
  eq(r.ok, true)
  local s = r.response.Spawns[1]
  eq(s.Data, "boot")
  local tags = tagsOf(s)
  eq(tags.Type, "Process"); eq(tags.Module, TXID); eq(tags["From-Process"], PROCESS)
  eq(tags["From-Module"], MODULE); eq(tags.Name, "child"); eq(tags.Reference, "1")
  local a = r.response.Assignments[1]
  eq(a.Message, "M1"); eq(a.Processes[2], "P2")
  r = eval([[ao.spawn("short")]])
  eq(r.ok, false); contains(r.response.Error, "43-character")
end)

test("messages from other processes need an authority when the process lists some", function()
  fresh()
  local env = json.decode(json.encode(envTable))
  env.Process.Tags = { { name = "Authority", value = "MU1,MU2" } }
  ENV = json.encode(env)
  send { Id = PROCESS, Tags = { { name = "Type", value = "Process" } } }
  eq(#ao.authorities, 2)
  local r = send { Data = "relayed", From = "SOMEPROCESS", Owner = "RANDOM" }
  eq(r.ok, true); eq(#Inbox, 0, "untrusted relay ignored")
  eq(r.response.Messages[1].Target, "SOMEPROCESS")
  eq(r.response.Messages[1].Data, "Message is not trusted by this process!")
  send { Data = "relayed", From = "SOMEPROCESS", Owner = "MU2" }
  eq(#Inbox, 1, "relay by an authority accepted")
  send { Data = "direct", From = OTHER }
  eq(#Inbox, 2, "direct wallet message accepted")
end)

---------------------------------------------------------------------------
-- determinism
---------------------------------------------------------------------------
test("os.time from the message Timestamp; math.random deterministic", function()
  spawn()
  local r = send { Action = "Eval", Data = "return os.time(), os.date('!%Y-%m-%d')", Timestamp = 1700000000999 }
  eq(outData(r), "1700000000999\t2023-11-14", "os.time() is the Timestamp in ms, as in aos")
  local a = outData(eval("math.randomseed(42) return math.random(1, 1000000), math.random(), math.random(6)"))
  local b = outData(eval("math.randomseed(42) return math.random(1, 1000000), math.random(), math.random(6)"))
  eq(a, b, "same seed, same numbers")
  local x = outData(eval("local t = {} for i = 1, 200 do local v = math.random(3, 5) "
    .. "if v < 3 or v > 5 then return 'bad' end t[v] = true end return t[3] and t[4] and t[5]"))
  eq(x, "true")
  eq(outData(eval("local v = math.random() return v >= 0 and v < 1")), "true")
  eq(outData(eval("return math.random(math.mininteger, math.maxinteger) ~= nil")), "true")
  contains(eval("return math.random(5, 1)").response.Error, "interval is empty")
  contains(eval("return os.exit()").response.Error, "os.exit is not available")
  -- two fresh processes with the same Id produce the same sequence
  spawn(); local s1 = outData(eval("return math.random(1000000)"))
  spawn(); local s2 = outData(eval("return math.random(1000000)"))
  eq(s1, s2)
end)

---------------------------------------------------------------------------
-- Llama
---------------------------------------------------------------------------
test("Llama without an engine raises clear errors", function()
  spawn()
  eq(__llama, nil)
  local r = eval(string.format('Llama.load(%q)', TXID))
  eq(r.ok, false); contains(r.response.Error, "llama engine not available")
  contains(eval("return Llama.run(10)").response.Error, "llama engine not available")
  contains(eval("return Llama.info()").response.Error, "llama engine not available")
  contains(eval('Llama.load("nope")').response.Error, "invalid model id 'nope'")
  contains(eval('Llama.load("nope")').response.Error, "eval:1:", "error located in the user code")
  contains(eval(string.format('Llama.load(%q, "bad/tok")', TXID)).response.Error, "invalid tokenizer id")
  contains(eval("Llama.load(5)").response.Error, "must be a txid")
  contains(eval("Llama.setSampler{temperature = -1}").response.Error, "temperature must be")
  contains(eval("Llama.setSampler{topp = 0}").response.Error, "topp must be")
  contains(eval("Llama.setSampler{topp = 1.5}").response.Error, "topp must be")
  contains(eval("Llama.setSampler{seed = 1.5}").response.Error, "seed must be")
  contains(eval("Llama.setSampler{temp = 1}").response.Error, "unknown option 'temp'")
  contains(eval("Llama.setSampler{temperature = 0/0}").response.Error, "temperature must be")
end)

-- A mock engine that records calls, following the __llama contract.
local function installMock()
  local calls = {}
  local mock = { calls = calls, loaded = false, out = { "Once", " upon", " a", " time" }, pos = 0 }
  local function rec(...) calls[#calls + 1] = table.concat({ ... }, " ") end
  function mock.load(path, tok, progress, log)
    rec("load", path, tostring(tok))
    if path:find("CORRUPT") then error("corrupt model: bad magic", 0) end
    log(3, "loading " .. path)
    log(1, "an error line")
    progress(0.5); progress(1.0)
    mock.loaded = true
    return { engine = "mock", model = { format = "llama2c", dim = 64 } }
  end
  function mock.set_prompt(text) rec("set_prompt", text); mock.pos = 0 end
  function mock.add(text) rec("add", text) end
  function mock.next()
    mock.pos = mock.pos + 1
    return mock.out[mock.pos]
  end
  function mock.run(n)
    rec("run", n)
    local t = {}
    for _ = 1, n do
      local s = mock.next(); if not s then break end
      t[#t + 1] = s
    end
    return table.concat(t)
  end
  function mock.set_sampler(t, p, s)
    rec("set_sampler", string.format("%.2f", t), string.format("%.2f", p), s)
    ok(math.type(s) == "integer", "seed is an integer")
  end
  function mock.info() return { engine = "mock", position = mock.pos, context_length = 512 } end
  function mock.stop() rec("stop"); mock.loaded = false end
  __llama = mock
  return mock
end

test("Llama over the native contract (mock engine)", function()
  spawn()
  local mock = installMock()
  contains(eval("return Llama.run(5)").response.Error, "Llama: no model loaded; call Llama.load(...) first")
  contains(eval("return Llama.next()").response.Error, "no model loaded")
  contains(eval("Llama.add('x')").response.Error, "no model loaded")
  contains(eval("Llama.setPrompt('x')").response.Error, "no model loaded")
  eval([[Progress = {} Logs = {}
    Llama.onProgress = function(p) Progress[#Progress + 1] = p end]])
  local r = eval(string.format('local info = Llama.load(%q, "/data/%s") return info.engine', TXID, TOKID))
  eq(r.ok, true); eq(outData(r), "mock")
  eq(mock.calls[1], "load /data/" .. TXID .. " /data/" .. TOKID, "bare txid -> /data/<txid>")
  eq(mock.calls[2], "set_sampler 0.00 0.90 0", "greedy sampler applied after load")
  eq(#Progress, 2); eq(Progress[2], 1.0)
  eq(Llama.isLoaded(), true)
  -- default onLog prints nothing at logLevel 0; with logLevel 3 it prints
  eq(outData(eval(string.format("Llama.logLevel = 3 Llama.load(%q)", TXID))),
    "loading /data/" .. TXID .. "\nan error line")
  eq(mock.calls[3], "stop", "previous model stopped before a new load")
  eval("Llama.logLevel = 0")
  eval("Llama.onLog = function(l, t) Logs[#Logs + 1] = l .. ':' .. t end")
  eval(string.format("Llama.load(%q)", TXID))
  eq(Logs[1], "3:loading /data/" .. TXID); eq(Logs[2], "1:an error line")
  eval("Llama.log(2, 'custom')"); eq(Logs[3], "2:custom")
  -- setPrompt / run / next / add
  mock.calls = {}; for k in pairs(mock.calls) do mock.calls[k] = nil end
  eq(outData(eval('Llama.setPrompt("") return Llama.run(2)')), "Once upon")
  eq(outData(eval('return Llama.run("Hi", 10)')), "Once upon a time", "run(prompt, n)")
  r = eval([[Llama.setPrompt("x") local parts = {}
    while true do local t = Llama.next() if not t then break end parts[#parts + 1] = t end
    return table.concat(parts, "|")]])
  eq(outData(r), "Once| upon| a| time")
  eval("Llama.add(' more')")
  contains(eval("return Llama.run(-1)").response.Error, "non-negative integer")
  contains(eval("return Llama.run('p')").response.Error, "token count")
  contains(eval("Llama.setPrompt({})").response.Error, "text must be a string")
  -- sampler
  r = eval("local s = Llama.setSampler{temperature = 0.8, topp = 0.95, seed = 7} return s.seed")
  eq(outData(r), "7")
  eval("Llama.setSampler{temperature = 1}")
  eq(Llama.sampler.seed, 7, "unspecified fields kept"); eq(Llama.sampler.temperature, 1.0)
  eval("Llama.setSampler()")
  eq(Llama.sampler.temperature, 0.0)
  -- info and native errors
  eq(outData(eval("return Llama.info().context_length")), "512")
  r = eval('Llama.load("/data/CORRUPTCORRUPTCORRUPTCORRUPTCORRUPTCORRUPT1")')
  eq(r.ok, false); contains(r.response.Error, "Llama.load: corrupt model: bad magic")
  eval("Llama.stop()")
  eq(Llama.isLoaded(), false)
  contains(eval("return Llama.run(1)").response.Error, "no model loaded")
end)

test("an aos-llama style handler runs unchanged", function()
  spawn()
  installMock()
  eval(string.format([[
    Llama = require("llama")
    Llama.load("/data/%s")
    Handlers.add("Inference", Handlers.utils.hasMatchingTag("Action", "Inference"), function(msg)
      Llama.setPrompt(msg.Data)
      local out = ""
      for i = 1, tonumber(msg.Tokens or "3") do
        local t = Llama.next()
        if not t then break end
        out = out .. t
      end
      ao.send({ Target = msg.From, Action = "Inference-Response", Data = out })
    end)]], TXID))
  local r = send { Action = "Inference", Data = "Tell me", From = OTHER,
    Tags = { { name = "Tokens", value = "2" } } }
  eq(r.ok, true)
  eq(r.response.Messages[1].Data, "Once upon")
  eq(tagsOf(r.response.Messages[1]).Action, "Inference-Response")
end)

---------------------------------------------------------------------------
-- aos 2 compatibility (lua/test/aos.lua)
assert(loadfile(dir .. "/test/aos.lua"))({
  test = test, eq = eq, ok = ok, contains = contains, raises = raises, send = send, eval = eval,
  spawn = spawn, outData = outData, tagsOf = tagsOf, fresh = fresh, dir = dir,
  OWNER = OWNER, OTHER = OTHER, PROCESS = PROCESS, TXID = TXID,
  setEnv = function() ENV = json.encode(envTable) end,
  env = function() return ENV end,
})

---------------------------------------------------------------------------
for _, t in ipairs(tests) do
  local good, err = pcall(t.fn)
  if good then
    passed = passed + 1
  else
    failed = failed + 1
    write("FAIL: ", t.name, "\n  ", tostring(err), "\n")
  end
end
print = orig.print
write(string.format("%d passed, %d failed\n", passed, failed))
orig.exit(failed == 0 and 0 or 1)
