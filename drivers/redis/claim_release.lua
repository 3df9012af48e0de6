-- Release a claim: none of its messages stays held, and those alive are eligible again at once. Idempotent.
-- ARGV: now, claim id.
-- Returns 1 when a claim was released, 0 when there was none; nil when there is no such queue.
local now, id = tonumber(ARGV[1]), ARGV[2]
if not incarnation() then
  return false
end
local claim = load_claim(id)
if not claim then
  return 0
end
local states, freed, back = load_many(claim.numbers), {}, {}
for i = 1, #claim.numbers do
  local m = states[i]
  if m and m.claim == id then
    m.claim, m.claim_expires = '', 0
    freed[#freed + 1] = m
    if m.expires > now and m.position > 0 then
      back[#back + 1] = m.position
      back[#back + 1] = m.n
    end
  end
end
save_many(freed)
each_batch('ZREM', CLAIMED, numbers_of(freed))
each_batch('ZADD', ELIGIBLE, back)
redis.call('HDEL', CLAIMS, id)
redis.call('ZREM', CLAIM_EXPIRIES, id)
return 1
