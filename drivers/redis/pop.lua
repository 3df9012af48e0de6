-- Remove and return up to `limit` of the oldest eligible messages, in one step.
-- ARGV: now, limit.
-- Returns {incarnation, row...}; nil when there is no such queue.
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local inc = incarnation()
if not inc then
  return false
end
settle(now)
local out = {inc}
for _, m in ipairs(oldest_eligible(now, limit)) do
  out[#out + 1] = row(m)
  remove(m.n)
end
return out
