-- The Dispute protocol: this process arbitrates a disagreement over an Inference claim by
-- recomputing one step, as opML does (llama/src/dispute.rs has the engine's side).
--
-- 1. A challenger sends `Action = "Dispute-Open"`: the claim's request and commitment
--    (tags Claimant, Model, optional Tokenizer, Temperature, Top-P, Seed, Prompt-SHA256,
--    Step-Root, Step-Leaves), its own root over the same number of entries
--    (Challenger-Root), optional Timeout (messages, default 16); Data = the prompt.
-- 2. The arbiter sends both parties `Action = "Bisect"` (Dispute-Id, Lo, Hi, Split, Step-Leaves):
--    each answers `Action = "Bisect-Answer"` (Dispute-Id, Lo, Hi, Left, Right), the roots
--    of entries [Lo, Split) and [Split, Hi) in its tree; an answer must hash to the node
--    the party committed to before. The arbiter goes on where the two differ.
-- 3. With one entry left, the arbiter sends both `Action = "Step-Inputs"` (Dispute-Id,
--    Index, Slot, Open-Entries = comma-separated indexes, Open-Vector = an index or
--    empty): either party answers `Action = "Step-Inputs-Answer"` (Dispute-Id; Data =
--    base64 of the openings, llama/src/dispute.rs). The arbiter recomputes that one
--    layer (or sampling step) with the claim's model and sends both parties, and the
--    challenger, `Action = "Dispute-Resolved"`: Winner, Loser, Winner-Role, Reason,
--    Index, Slot, Recomputed-Leaf, Rounds.
-- A length challenge (`Challenge = "Length"` on Dispute-Open, with the claim's Max-Tokens and
-- no Challenger-Root) disputes where the claim stopped, not a step: that it goes on past
-- an end token (End-Index = the head entry holding it) or stops early (no End-Index: its
-- last entry is not an end token, though Max-Tokens and the context had room). The
-- arbiter asks the claimant alone to open that entry (Step-Inputs as above) and reads its
-- token (llama/src/dispute.rs, check_length); a claimant that does not answer loses.
-- Timeouts count the messages this process receives: a party asked for an answer that has
-- not come within Timeout messages loses (if both are silent, the dispute is abandoned
-- and the claim stands). Openings that do not prove the inputs lose for their sender.
-- Bad requests get `Action = "Dispute-Error"` with an Error tag; nothing here raises.

local base64 = require(".base64")

local Dispute = { Version = "aos-llama-dispute-v1", DefaultTimeout = 16 }
Disputes = Disputes or {}
DisputeClock = DisputeClock or 0

local function isHash(v) return type(v) == "string" and #v == 64 and v:find("^[0-9a-f]+$") ~= nil end

local function split(n)
  local k = 1
  while k * 2 < n do k = k * 2 end
  return k
end

local function integer(msg, name, default, lo)
  local raw = msg[name]
  if raw == nil or raw == "" then
    if default ~= nil then return default end
    error("the " .. name .. " tag is required", 0)
  end
  local v = math.tointeger(tonumber(raw))
  if v == nil or v < lo then error(name .. " must be an integer >= " .. lo .. ", got " .. tostring(raw), 0) end
  return v
end

local function send(d, to, fields)
  fields.Target = to
  fields["Dispute-Id"] = d.Id
  ao.send(fields)
end

local function roleOf(d, from)
  if from == d.Claimant then return "claimant" end
  if from == d.Challenger then return "challenger" end
  return nil
end

local function resolve(d, winnerRole, reason, extra)
  d.Status = "resolved"
  d.Winner = winnerRole == "claimant" and d.Claimant or d.Challenger
  d.WinnerRole = winnerRole
  d.Reason = reason
  local fields = {
    Action = "Dispute-Resolved",
    Winner = d.Winner,
    Loser = winnerRole == "claimant" and d.Challenger or d.Claimant,
    ["Winner-Role"] = winnerRole,
    Reason = reason,
    Claimant = d.Claimant,
    Challenger = d.Challenger,
    Rounds = tostring(d.Rounds),
    Data = reason,
  }
  for k, v in pairs(extra or {}) do fields[k] = v end
  d.Result = fields
  local sent = {}
  for _, to in ipairs({ d.Claimant, d.Challenger }) do
    if not sent[to] then
      sent[to] = true
      local copy = {}
      for k, v in pairs(fields) do copy[k] = v end
      send(d, to, copy)
    end
  end
end

local function ask(d, fields, parties)
  d.Asked = DisputeClock
  d.Answers = {}
  for _, to in ipairs(parties or { d.Claimant, d.Challenger }) do
    local copy = { ["Step-Leaves"] = tostring(d.Leaves) } -- a longer trace argues over its prefix
    for k, v in pairs(fields) do copy[k] = v end
    send(d, to, copy)
  end
end

local function askBisect(d)
  local k = split(d.Hi - d.Lo)
  d.Split = d.Lo + k
  ask(d, { Action = "Bisect", Lo = tostring(d.Lo), Hi = tostring(d.Hi), Split = tostring(d.Split) })
end

local function askInputs(d)
  d.Phase = "step"
  d.Index = d.Lo
  local entries, vector, slot = Llama.dispute.needs(d.Prompt, d.Leaves, d.Index)
  d.Slot = slot
  local list = {}
  for i, v in ipairs(entries) do list[i] = tostring(v) end
  ask(d, {
    Action = "Step-Inputs",
    Index = tostring(d.Index),
    Slot = slot,
    ["Open-Entries"] = table.concat(list, ","),
    ["Open-Vector"] = vector and tostring(vector) or "",
  })
end

local function askLengthInputs(d, index)
  d.Phase = "step"
  d.Index = index
  d.Slot = select(3, Llama.dispute.needs(d.Prompt, d.Leaves, index))
  ask(d, { Action = "Step-Inputs", Index = tostring(index), Slot = d.Slot,
           ["Open-Entries"] = tostring(index), ["Open-Vector"] = "" }, { d.Claimant })
end

local function ensureModel(d)
  local modelPath = "/data/" .. d.Model
  local tokPath = d.Tokenizer and ("/data/" .. d.Tokenizer) or nil
  if Llama.model ~= modelPath or Llama.tokenizer ~= tokPath or not Llama.isLoaded() then
    Llama.load(d.Model, d.Tokenizer)
  end
end

local function txid(msg, name, required)
  local v = msg[name]
  if v == nil or v == "" then
    if required then error("the " .. name .. " tag is required", 0) end
    return nil
  end
  if not ao.isTxid(v) then error(name .. " must be a 43-character id, got " .. tostring(v), 0) end
  return v
end

function Dispute.open(msg)
  local prompt = msg.Data or ""
  if type(prompt) ~= "string" then error("Data (the prompt) must be text", 0) end
  local d = {
    Id = msg.Id,
    Status = "open",
    Phase = "bisect",
    Claimant = txid(msg, "Claimant", true),
    Challenger = msg.From,
    Model = txid(msg, "Model", true),
    Tokenizer = txid(msg, "Tokenizer", false),
    Prompt = prompt,
    Leaves = integer(msg, "Step-Leaves", nil, 1),
    Timeout = integer(msg, "Timeout", Dispute.DefaultTimeout, 1),
    Rounds = 0,
  }
  local temperature = tonumber(msg.Temperature or "0")
  local topp = tonumber(msg["Top-P"] or "0.9")
  local seed = math.tointeger(tonumber(msg.Seed or "0"))
  if not temperature or temperature < 0 or not topp or not seed or seed < 0 then
    error("Temperature, Top-P and Seed must be numbers as in the claim", 0)
  end
  d.Sampler = { temperature = temperature + 0.0, topp = topp + 0.0, seed = seed }
  d.Kind = msg.Challenge or "Step"
  if d.Kind ~= "Step" and d.Kind ~= "Length" then
    error("Challenge must be Step or Length, got " .. tostring(d.Kind), 0)
  end
  local claimRoot, challengerRoot = msg["Step-Root"], msg["Challenger-Root"]
  if d.Kind == "Length" then
    d.MaxTokens = integer(msg, "Max-Tokens", nil, 1)
    d.EndIndex = integer(msg, "End-Index", false, 0) or nil
    if challengerRoot ~= nil then error("a Length challenge takes no Challenger-Root", 0) end
    challengerRoot = ""
    if not isHash(claimRoot) then error("Step-Root must be a 64-digit lowercase hex root", 0) end
  elseif not isHash(claimRoot) or not isHash(challengerRoot) then
    error("Step-Root and Challenger-Root must be 64-digit lowercase hex roots", 0)
  end
  local promptHash = msg[ao.normalizeTagName("Prompt-SHA256")] or msg["Prompt-SHA256"]
  if promptHash and promptHash ~= Llama.sha256(prompt) then
    error("Data is not the prompt the claim hashed (Prompt-SHA256 differs)", 0)
  end
  if claimRoot == challengerRoot then
    error("the roots agree: there is nothing to dispute", 0)
  end
  if Disputes[d.Id] then error("dispute " .. d.Id .. " is already open", 0) end
  if d.Claimant == d.Challenger then error("the claimant cannot challenge itself", 0) end
  ensureModel(d)
  d.Roots = { claimant = claimRoot, challenger = challengerRoot }
  d.Nodes = { claimant = claimRoot, challenger = challengerRoot }
  d.Lo, d.Hi = 0, d.Leaves
  Disputes[d.Id] = d
  local ok, err = pcall(Llama.dispute.layout, prompt, d.Leaves)
  if not ok then
    resolve(d, "challenger", "the claim's Step-Leaves fits no generation of this prompt: " .. tostring(err))
    return
  end
  if d.Kind == "Length" then
    local ok, index, malformed = pcall(Llama.dispute.lengthNeeds, prompt, d.Leaves, d.MaxTokens, d.EndIndex)
    if not ok then
      Disputes[d.Id] = nil -- a bad End-Index: nothing was opened
      error(index, 0)
    end
    if malformed then resolve(d, "challenger", malformed) else askLengthInputs(d, index) end
  elseif d.Hi - d.Lo == 1 then
    askInputs(d)
  else
    askBisect(d)
  end
end

function Dispute.bisectAnswer(msg, d, role)
  if d.Phase ~= "bisect" then error("this dispute is not bisecting", 0) end
  if tonumber(msg.Lo) ~= d.Lo or tonumber(msg.Hi) ~= d.Hi then
    error(string.format("the open round is [%d, %d)", d.Lo, d.Hi), 0)
  end
  if d.Answers[role] then error("already answered this round", 0) end
  local left, right = msg.Left, msg.Right
  if not isHash(left) or not isHash(right) then error("Left and Right must be 64-digit lowercase hex", 0) end
  if Llama.dispute.node(left, right) ~= d.Nodes[role] then
    local other = role == "claimant" and "challenger" or "claimant"
    resolve(d, other, string.format("the %s's answer for entries [%d, %d) does not hash to the root it committed to", role, d.Lo, d.Hi))
    return
  end
  d.Answers[role] = { left = left, right = right }
  local a, b = d.Answers.claimant, d.Answers.challenger
  if not (a and b) then return end
  d.Rounds = d.Rounds + 1
  if a.left ~= b.left then
    d.Hi = d.Split
    d.Nodes = { claimant = a.left, challenger = b.left }
  else
    d.Lo = d.Split
    d.Nodes = { claimant = a.right, challenger = b.right }
  end
  if d.Hi - d.Lo == 1 then askInputs(d) else askBisect(d) end
end

function Dispute.inputsAnswer(msg, d, role)
  if d.Phase ~= "step" then error("this dispute is not asking for step inputs", 0) end
  if d.Kind == "Length" then return Dispute.lengthAnswer(msg, d, role) end
  local okDecode, openings = pcall(base64.decode, msg.Data or "")
  local result, err
  if okDecode then
    local ok, r = pcall(Llama.dispute.check, d.Prompt, d.Sampler, d.Leaves, d.Index, d.Roots[role], openings)
    if ok then result = r else err = r end
  else
    err = openings
  end
  if not result then
    local other = role == "claimant" and "challenger" or "claimant"
    resolve(d, other, "the " .. role .. "'s openings do not prove the step's inputs: " .. tostring(err),
      { Index = tostring(d.Index), Slot = d.Slot })
    return
  end
  local extra = { Index = tostring(d.Index), Slot = result.slot, ["Recomputed-Leaf"] = result.leaf,
                  Position = tostring(result.position) }
  if result.layer then extra.Layer = tostring(result.layer) end
  if result.token then extra.Token = tostring(result.token) end
  local what = result.layer and ("layer " .. result.layer .. " at position " .. result.position)
    or ("the token sampled at position " .. result.position .. (result.token and (" (token " .. result.token .. ")") or ""))
  local claimOk, challengeOk = d.Nodes.claimant == result.leaf, d.Nodes.challenger == result.leaf
  if claimOk then
    resolve(d, "claimant", "entry " .. d.Index .. " (" .. result.slot .. "): recomputing " .. what
      .. " gives the claimant's commitment, not the challenger's", extra)
  elseif challengeOk then
    resolve(d, "challenger", "entry " .. d.Index .. " (" .. result.slot .. "): recomputing " .. what
      .. " gives the challenger's commitment, not the claimant's", extra)
  else
    resolve(d, "challenger", "entry " .. d.Index .. " (" .. result.slot .. "): recomputing " .. what
      .. " matches neither party; the claim is wrong", extra)
  end
end

function Dispute.lengthAnswer(msg, d, role)
  if role ~= "claimant" then error("in a Length challenge only the claimant opens entries", 0) end
  local extra = { Index = tostring(d.Index), Slot = d.Slot }
  local okDecode, openings = pcall(base64.decode, msg.Data or "")
  local ok, v = false, openings
  if okDecode then
    ok, v = pcall(Llama.dispute.checkLength, d.Prompt, d.Leaves, d.MaxTokens, d.Index, d.Roots.claimant, openings)
  end
  if not ok then
    resolve(d, "challenger", "the claimant's openings do not prove entry " .. d.Index .. ": " .. tostring(v), extra)
    return
  end
  extra.Position, extra.Token = tostring(v.position), tostring(v.token)
  resolve(d, v.holds and "claimant" or "challenger", "entry " .. d.Index .. " (" .. v.slot .. "): " .. v.reason, extra)
end

-- Every message advances the clock; a party asked for an answer and silent past its
-- dispute's Timeout loses.
function Dispute.tick()
  DisputeClock = DisputeClock + 1
  for _, d in pairs(Disputes) do
    if d.Status == "open" and DisputeClock - d.Asked > d.Timeout then
      local a, b = d.Answers.claimant, d.Answers.challenger
      local reason = "timed out after " .. d.Timeout .. " messages"
      if d.Kind == "Length" then
        resolve(d, "challenger", "the claimant did not open entry " .. tostring(d.Index) .. " (" .. reason .. ")")
      elseif d.Phase == "step" or (not a and not b) then
        resolve(d, "claimant", "no answer from either party (" .. reason .. "): the dispute is abandoned and the claim stands")
      elseif not a then
        resolve(d, "challenger", "the claimant stopped answering (" .. reason .. ")")
      else
        resolve(d, "claimant", "the challenger stopped answering (" .. reason .. ")")
      end
    end
  end
end

local function guarded(f)
  return function(msg)
    local ok, err = pcall(f, msg)
    if not ok then
      local reason = type(err) == "string" and err or tostring(err)
      ao.send({ Target = msg.From, Action = "Dispute-Error", Error = reason, Data = reason,
                ["Dispute-Id"] = msg["Dispute-Id"] or msg.Id })
    end
  end
end

local function answer(f)
  return guarded(function(msg)
    local d = Disputes[msg["Dispute-Id"] or ""]
    if not d then error("no dispute " .. tostring(msg["Dispute-Id"]), 0) end
    if d.Status ~= "open" then error("dispute " .. d.Id .. " is resolved", 0) end
    local role = roleOf(d, msg.From)
    if not role then error(tostring(msg.From) .. " is not a party to dispute " .. d.Id, 0) end
    f(msg, d, role)
  end)
end

Handlers.prepend("Dispute-Clock", function() return "continue" end, function() pcall(Dispute.tick) end)
Handlers.add("Dispute-Open", Handlers.utils.hasMatchingTag("Action", "Dispute-Open"), guarded(Dispute.open))
Handlers.add("Bisect-Answer", Handlers.utils.hasMatchingTag("Action", "Bisect-Answer"), answer(Dispute.bisectAnswer))
Handlers.add("Step-Inputs-Answer", Handlers.utils.hasMatchingTag("Action", "Step-Inputs-Answer"), answer(Dispute.inputsAnswer))

package.loaded["dispute"] = Dispute
package.loaded[".dispute"] = Dispute
_G.Dispute = Dispute
return Dispute
