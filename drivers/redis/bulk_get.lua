-- The unexpired messages among the given ones, in the queue's current incarnation.
-- ARGV: now, then incarnation, number per message.
-- Returns {incarnation, row...}; nil when there is no such queue.
local now = tonumber(ARGV[1])
local inc = incarnation()
if not inc then
  return false
end
local numbers = {}
for i = 2, #ARGV, 2 do
  if tonumber(ARGV[i]) == inc then
    numbers[#numbers + 1] = ARGV[i + 1]
  end
end
local states, alive = load_many(numbers), {}
for i = 1, #numbers do
  local m = states[i]
  if m and m.expires > now then
    alive[#alive + 1] = m
  end
end
return add_rows({inc}, alive)
