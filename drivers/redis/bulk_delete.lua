-- Delete those of the given messages that meet the claim condition (see delete.lua), in one step.
-- ARGV: now, claim id ('' for none), then incarnation, number per message.
-- Returns {deleted, 1 if the claim is live else 0}; nil when there is no such queue.
local now, claim = tonumber(ARGV[1]), ARGV[2]
local inc = incarnation()
if not inc then
  return false
end
local deleted = 0
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i]) == inc then
    local m = load(ARGV[i + 1])
    if m and m.expires > now and deletable(m, claim, now) then
      remove(m.n)
      deleted = deleted + 1
    end
  end
end
local live = 0
local stored = claim ~= '' and load_claim(claim)
if stored and stored.expires > now then
  live = 1
end
return {deleted, live}
