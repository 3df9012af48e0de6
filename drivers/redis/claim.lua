-- Create a claim: take up to `limit` of the oldest eligible messages (visible, unexpired, held by no live claim;
-- claims that expired give their messages back first), hold each until `expires`, lift its expiry to `floor`,
-- and record the claim if anything was taken. O(log n + limit), amortised over the entries it clears.
-- ARGV: now, claim id, ttl, expires, floor, limit.
-- Returns {incarnation, row...} (rows as held); nil when there is no such queue.
local now, id, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local expires, floor, limit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local inc = incarnation()
if not inc then
  return false
end
settle(now)
local out = {inc}
local taken = oldest_eligible(now, limit)
if #taken == 0 then
  return out
end
local numbers, claimed = numbers_of(taken), {}
for _, m in ipairs(taken) do
  m.claim, m.claim_expires = id, expires
  claimed[#claimed + 1] = expires
  claimed[#claimed + 1] = m.n
end
extend(taken, floor)
save_many(taken)
add_rows(out, taken)
each_batch('ZADD', CLAIMED, claimed)
redis.call('HSET', CLAIMS, id, cmsgpack.pack(ttl, now, expires, numbers))
redis.call('ZADD', CLAIM_EXPIRIES, expires, id)
return out
