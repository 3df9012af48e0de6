-- Delete one message if the claim condition holds: no live claim holds it (claim ''), or that live claim does.
-- ARGV: now, incarnation, number, claim id ('' for none).
-- Returns nil when deleted or when there is no such unexpired message (or queue); else {holder, its expiry},
-- the claim stored on the message as it is now.
local now, claim = tonumber(ARGV[1]), ARGV[4]
if incarnation() ~= tonumber(ARGV[2]) then
  return false
end
local m = load(ARGV[3])
if not m or m.expires <= now then
  return false
end
if not deletable(m, claim, now) then
  return {m.claim, fmt(m.claim_expires)}
end
remove_loaded({m})
return false
