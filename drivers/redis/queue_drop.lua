-- Remove the queue with all its messages and claims, in one step.
-- Returns the incarnation removed; nil when there was no such queue.
local inc = incarnation()
if not inc then
  return false
end
redis.call('UNLINK', unpack(KEYS))
return inc
