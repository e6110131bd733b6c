-- examples/token.lua: a fungible token process in aos 2 style, written for this project
-- (the behaviour of the ao cookbook's token spec; no aos code copied). Load it with an
-- Eval (or On-Boot). Balances are decimal strings, arithmetic in 256-bit bint.
--
-- Actions: Info, Balance (Recipient or Target tag, else the sender), Balances,
-- Transfer (Recipient, Quantity; Debit-Notice to the sender, Credit-Notice to the
-- recipient, X-* tags forwarded; Transfer-Error on a bad quantity or an overdraft),
-- Mint (Quantity; only the process owner or the process itself; Mint-Error otherwise),
-- Total-Supply.

local bint = require(".bint")(256)
local utils = require(".utils")
local json = require(".json")

local function add(a, b) return tostring(bint(a) + bint(b)) end
local function sub(a, b) return tostring(bint(a) - bint(b)) end

if Balances == nil then -- first load (re-loading the file keeps the state)
  Denomination = 12
  Name = "Llama Coin"
  Ticker = "LLAMA"
  Logo = "SBCCXwwecBlDqRLUjb8dYABExTJXLieawf7m2aBJ-KY"
  Balances = { [Owner] = tostring(bint(10000) * bint.ipow(10, Denomination)) }
end

local function quantity(msg)
  local q = msg.Quantity
  if type(q) ~= "string" or not q:match("^%d+$") then return nil end
  local b = bint(q)
  if not (bint(0) < b) then return nil end
  return b
end

Handlers.add("info", Handlers.utils.hasMatchingTag("Action", "Info"), function(msg)
  msg.reply({ Name = Name, Ticker = Ticker, Logo = Logo, Denomination = tostring(Denomination) })
end)

Handlers.add("balance", Handlers.utils.hasMatchingTag("Action", "Balance"), function(msg)
  local account = msg.Tags.Recipient or msg.Tags.Target or msg.From
  local bal = Balances[account] or "0"
  msg.reply({ Balance = bal, Ticker = Ticker, Account = account, Data = bal })
end)

Handlers.add("balances", Handlers.utils.hasMatchingTag("Action", "Balances"), function(msg)
  msg.reply({ Data = json.encode(setmetatable(Balances, json.object_mt)) })
end)

Handlers.add("transfer", Handlers.utils.hasMatchingTag("Action", "Transfer"), function(msg)
  local qty = quantity(msg)
  if type(msg.Recipient) ~= "string" or qty == nil then
    msg.reply({ Action = "Transfer-Error", ["Message-Id"] = msg.Id,
      Error = "Recipient and a positive integer Quantity are required" })
    return
  end
  local have = bint(Balances[msg.From] or "0")
  if have < qty then
    msg.reply({ Action = "Transfer-Error", ["Message-Id"] = msg.Id, Error = "Insufficient Balance!" })
    return
  end
  local q = tostring(qty)
  Balances[msg.From] = sub(Balances[msg.From], q)
  Balances[msg.Recipient] = add(Balances[msg.Recipient] or "0", q)
  if msg.Cast then return end
  local debit = { Action = "Debit-Notice", Recipient = msg.Recipient, Quantity = q,
    Data = "You transferred " .. q .. " to " .. msg.Recipient }
  local credit = { Target = msg.Recipient, Action = "Credit-Notice", Sender = msg.From,
    Quantity = q, Data = "You received " .. q .. " from " .. msg.From }
  for name, value in pairs(msg.Tags) do
    if name:sub(1, 2) == "X-" then debit[name] = value; credit[name] = value end
  end
  msg.reply(debit)
  Send(credit)
end)

Handlers.add("mint", Handlers.utils.hasMatchingTag("Action", "Mint"), function(msg)
  if msg.From ~= Owner and msg.From ~= ao.id then
    msg.reply({ Action = "Mint-Error", Error = "Only the process owner can mint new " .. Ticker })
    return
  end
  local qty = quantity(msg)
  if qty == nil then
    msg.reply({ Action = "Mint-Error", Error = "Quantity must be a positive integer" })
    return
  end
  Balances[msg.From] = add(Balances[msg.From] or "0", tostring(qty))
  msg.reply({ Data = "Successfully minted " .. tostring(qty) })
end)

Handlers.add("totalSupply", Handlers.utils.hasMatchingTag("Action", "Total-Supply"), function(msg)
  local total = utils.reduce(function(acc, v) return add(acc, v) end, "0", utils.values(Balances))
  msg.reply({ Action = "Total-Supply", Ticker = Ticker, Data = total })
end)
