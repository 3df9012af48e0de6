-- Renew a live claim: its lease becomes `ttl` ending at `expires`, and each message it holds lives until `floor`
-- at least (never shortened).
-- ARGV: now, claim id, ttl, expires, floor.
-- Returns 1 when renewed, 0 when the claim is missing or expired; nil when there is no such queue.
local now, id, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local expires, floor = tonumber(ARGV[4]), tonumber(ARGV[5])
if not incarnation() then
  return false
end
local claim = load_claim(id)
if not claim or claim.expires <= now then
  return 0
end
redis.call('HSET', CLAIMS, id, cmsgpack.pack(ttl, claim.created, expires, claim.numbers))
redis.call('ZADD', CLAIM_EXPIRIES, expires, id)
local states, holding, claimed = load_many(claim.numbers), {}, {}
for i = 1, #claim.numbers do
  local m = states[i]
  if m and m.claim == id and held(m, now) and m.expires > now then
    m.claim_expires = expires
    holding[#holding + 1] = m
    claimed[#claimed + 1] = expires
    claimed[#claimed + 1] = m.n
  end
end
extend(holding, floor)
save_many(holding)
each_batch('ZADD', CLAIMED, claimed)
return 1
