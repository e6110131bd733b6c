-- examples/chatroom.lua: the ao cookbook's chatroom, written for this project.
-- Register / Unregister join and leave; Broadcast sends the message's Data to every
-- member (Action = Broadcasted, Broadcaster = the sender) and tells the sender how many.

Members = Members or {}

local function indexOf(id)
  for i, m in ipairs(Members) do if m == id then return i end end
end

Handlers.add("Register", { Action = "Register" }, function(msg)
  if not indexOf(msg.From) then table.insert(Members, msg.From) end
  print(msg.From .. " registered")
  msg.reply({ Data = "registered" })
end)

Handlers.add("Unregister", { Action = "Unregister" }, function(msg)
  local i = indexOf(msg.From)
  if i then table.remove(Members, i) end
  msg.reply({ Data = "unregistered" })
end)

Handlers.add("Broadcast", { Action = "Broadcast" }, function(msg)
  if not indexOf(msg.From) then
    msg.reply({ Action = "Broadcast-Error", Data = "register first" })
    return
  end
  for _, member in ipairs(Members) do
    Send({ Target = member, Action = "Broadcasted", Broadcaster = msg.From, Data = msg.Data })
  end
  msg.reply({ Data = "Broadcasted to " .. #Members .. " members" })
end)
