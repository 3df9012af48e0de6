-- Remove and return up to `limit` of the oldest eligible messages, in one step.
-- ARGV: now, limit.
-- Returns {incarnation, row...}; nil when there is no such queue.
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local inc = incarnation()
if not inc then
  return false
end
settle(now)
local taken = oldest_eligible(now, limit)
local out = add_rows({inc}, taken)
remove_loaded(taken)
return out
