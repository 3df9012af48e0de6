-- Delete those of the given messages that meet the claim condition (see delete.lua), in one step.
-- ARGV: now, claim id ('' for none), then incarnation, number per message.
-- Returns {deleted, 1 if the claim is live else 0}; nil when there is no such queue.
local now, claim = tonumber(ARGV[1]), ARGV[2]
local inc = incarnation()
if not inc then
  return false
end
local numbers = {}
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i]) == inc then
    numbers[#numbers + 1] = ARGV[i + 1]
  end
end
local states, gone = load_many(numbers), {}
for i = 1, #numbers do
  local m = states[i]
  if m and m.expires > now and deletable(m, claim, now) then
    gone[#gone + 1] = m
  end
end
remove_loaded(gone)
local deleted = #gone
local live = 0
local stored = claim ~= '' and load_claim(claim)
if stored and stored.expires > now then
  live = 1
end
return {deleted, live}
