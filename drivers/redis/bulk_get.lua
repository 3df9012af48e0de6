-- The unexpired messages among the given ones, in the queue's current incarnation.
-- ARGV: now, then incarnation, number per message.
-- Returns {incarnation, row...}; nil when there is no such queue.
local now = tonumber(ARGV[1])
local inc = incarnation()
if not inc then
  return false
end
local out = {inc}
for i = 2, #ARGV, 2 do
  if tonumber(ARGV[i]) == inc then
    local m = load(ARGV[i + 1])
    if m and m.expires > now then
      out[#out + 1] = row(m)
    end
  end
end
return out
