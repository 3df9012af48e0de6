-- The queue's counts as of `now` (due delayed messages promoted first): claimed (under a live claim), free
-- (visible, unclaimed), total (unexpired, delayed too), and the oldest and newest visible unexpired messages by
-- position. Each count is one ZCOUNT: a live claim's messages outlive it, and delayed ones are indexed apart.
-- ARGV: now.
-- Returns {incarnation, claimed, free, total, oldest row or {}, newest row or {}}; nil when there is no such queue.
local now = tonumber(ARGV[1])
local inc = incarnation()
if not inc then
  return false
end
promote(now)
local alive = '(' .. fmt(now)
local total = redis.call('ZCOUNT', EXPIRIES, alive, '+inf')
local claimed = redis.call('ZCOUNT', CLAIMED, alive, '+inf')
local delayed = redis.call('ZCOUNT', DELAYED_EXPIRIES, alive, '+inf')

-- The first unexpired message from one end of VISIBLE; dead entries met there leave the position indexes.
local function first_alive(command)
  while true do
    local numbers = redis.call(command, VISIBLE, 0, 9)
    if #numbers == 0 then
      return {}
    end
    local dead = {}
    for _, n in ipairs(numbers) do
      local m = load(n)
      if m and m.expires > now then
        each_batch('ZREM', VISIBLE, dead)
        each_batch('ZREM', ELIGIBLE, dead)
        return row(m, redis.call('HGET', BODIES, m.n))
      end
      dead[#dead + 1] = n
    end
    each_batch('ZREM', VISIBLE, dead)
    each_batch('ZREM', ELIGIBLE, dead)
  end
end

return {inc, claimed, total - claimed - delayed, total, first_alive('ZRANGE'), first_alive('ZREVRANGE')}
