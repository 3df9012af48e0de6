-- A claim if it is live, with the unexpired messages it holds.
-- ARGV: now, claim id.
-- Returns {incarnation} when the claim is missing or expired, else {incarnation, {ttl, created, expires}, row...};
-- nil when there is no such queue.
local now, id = tonumber(ARGV[1]), ARGV[2]
local inc = incarnation()
if not inc then
  return false
end
local claim = load_claim(id)
if not claim or claim.expires <= now then
  return {inc}
end
local states, holding = load_many(claim.numbers), {}
for i = 1, #claim.numbers do
  local m = states[i]
  if m and m.claim == id and held(m, now) and m.expires > now then
    holding[#holding + 1] = m
  end
end
return add_rows({inc, {claim.ttl, fmt(claim.created), fmt(claim.expires)}}, holding)
