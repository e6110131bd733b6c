-- The Inference protocol: an AO process answers `Action = "Inference"` requests with a
-- generation and the commitments anyone can check with `aos-llama verify`.
--
-- Request tags: Model (txid of the model), optional Tokenizer (txid; llama2.c checkpoints
-- need one, GGUF carries its own), Max-Tokens (tokens to generate), optional Temperature
-- (default 0 = greedy), Top-P (default 0.9), Seed (default 0). The prompt is Data.
--
-- Reply (to msg.From): Action = "Inference-Response", Data = the generated text, tags
-- Model, Tokenizer, Module, Prompt-SHA256, Output-SHA256, Trace-Root, Trace-Version,
-- Step-Root, Step-Leaves, Step-Version (the version 2 commitment a Dispute settles),
-- Tokens (tokens generated), Engine-Version, Max-Tokens, Temperature, Top-P, Seed,
-- X-Reference (the request's Reference) and ao.send's own Reference.
-- A bad request gets `Action = "Inference-Error"` with an `Error` tag: never silence,
-- and never a Lua error (which would roll the reply back with the message).

local Inference = { Version = "aos-llama-trace-v1", StepVersion = "aos-llama-trace-v2" }

local function number(msg, name, default, lo, hi, integer)
  local raw = msg[name]
  if raw == nil or raw == "" then return default end
  local v = tonumber(raw)
  if v == nil or v ~= v then error(name .. " must be a number, got " .. tostring(raw), 0) end
  if integer and math.tointeger(v) == nil then error(name .. " must be an integer, got " .. tostring(raw), 0) end
  if (lo and v < lo) or (hi and v > hi) then
    error(string.format("%s must be between %s and %s, got %s", name, tostring(lo), tostring(hi), tostring(raw)), 0)
  end
  return integer and math.tointeger(v) or v
end

local function txid(msg, name, required)
  local v = msg[name]
  if v == nil or v == "" then
    if required then error("the " .. name .. " tag (a model txid) is required", 0) end
    return nil
  end
  if not ao.isTxid(v) then error(name .. " must be a 43-character Arweave txid, got " .. tostring(v), 0) end
  return v
end

-- Parse and run one request; returns the reply's fields or raises a reason string.
function Inference.run(msg)
  local model = txid(msg, "Model", true)
  local tokenizer = txid(msg, "Tokenizer", false)
  local maxTokens = number(msg, "Max-Tokens", nil, 1, nil, true)
  if maxTokens == nil then error("the Max-Tokens tag is required", 0) end
  local temperature = number(msg, "Temperature", 0, 0, nil, false)
  local topp = number(msg, "Top-P", 0.9, 0, 1, false)
  local seed = number(msg, "Seed", 0, 0, nil, true)
  local prompt = msg.Data or ""
  if type(prompt) ~= "string" then error("Data (the prompt) must be text", 0) end

  Llama.trace(true)
  local modelPath, tokPath = "/data/" .. model, tokenizer and ("/data/" .. tokenizer) or nil
  if Llama.model ~= modelPath or Llama.tokenizer ~= tokPath or not Llama.isLoaded() then
    Llama.load(model, tokenizer)
  end
  Llama.setSampler { temperature = temperature, topp = topp, seed = seed }
  local text = Llama.run(prompt, maxTokens)
  local root, _, generated = Llama.traceRoot()
  local stepRoot, stepLeaves = Llama.stepRoot()
  local info = Llama.info()
  return {
    Data = text,
    Model = model,
    Tokenizer = tokenizer,
    Module = ao.env and ao.env.Module and ao.env.Module.Id or nil,
    ["Prompt-SHA256"] = Llama.sha256(prompt),
    ["Output-SHA256"] = Llama.sha256(text),
    ["Trace-Root"] = root,
    ["Trace-Version"] = Inference.Version,
    ["Step-Root"] = stepRoot,
    ["Step-Leaves"] = tostring(stepLeaves),
    ["Step-Version"] = Inference.StepVersion,
    Tokens = tostring(generated),
    ["Engine-Version"] = info.version,
    ["Max-Tokens"] = tostring(maxTokens),
    Temperature = tostring(temperature),
    ["Top-P"] = tostring(topp),
    Seed = tostring(seed),
  }
end

function Inference.handle(msg)
  local ok, result = pcall(Inference.run, msg)
  local reply
  if ok then
    reply = result
    reply.Action = "Inference-Response"
  else
    local reason = type(result) == "string" and result or tostring(result)
    reply = { Action = "Inference-Error", Error = reason, Data = reason, Model = msg.Model }
  end
  reply.Target = msg.From
  reply["X-Reference"] = msg.Reference
  ao.send(reply)
end

Handlers.add("Inference", Handlers.utils.hasMatchingTag("Action", "Inference"), Inference.handle)

package.loaded["inference"] = Inference
package.loaded[".inference"] = Inference
_G.Inference = Inference
return Inference
