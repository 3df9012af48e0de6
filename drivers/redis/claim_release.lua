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
local back = {}
for _, n in ipairs(claim.numbers) do
  local m = load(n)
  if m and m.claim == id then
    m.claim, m.claim_expires = '', 0
    save(m)
    redis.call('ZREM', CLAIMED, n)
    if m.expires > now and m.position > 0 then
      back[#back + 1] = m.position
      back[#back + 1] = n
    end
  end
end
each_batch('ZADD', ELIGIBLE, back)
redis.call('HDEL', CLAIMS, id)
redis.call('ZREM', CLAIM_EXPIRIES, id)
return 1
