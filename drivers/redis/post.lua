-- Post a batch in one step: consecutive numbers, and the next positions in input order for the undelayed, due
-- delayed messages first, so visibility order is position (marker) order.
-- ARGV: now, client, then per message: body, expires, due ('' when not delayed).
-- Returns {incarnation, first number}; nil when there is no such queue.
local now, client = tonumber(ARGV[1]), ARGV[2]
local inc = incarnation()
if not inc then
  return false
end
promote(now)
local count = (#ARGV - 2) / 3
local first = redis.call('HINCRBY', QUEUE, 'num', count) - count + 1
local position = tonumber(redis.call('HGET', QUEUE, 'pos'))
local bodies, states, expiries, visible, delayed, delayed_expiries = {}, {}, {}, {}, {}, {}
for i = 0, count - 1 do
  local n = first + i
  local body, expires, due = ARGV[3 + 3 * i], tonumber(ARGV[4 + 3 * i]), ARGV[5 + 3 * i]
  local at = 0
  if due == '' then
    position = position + 1
    at = position
    visible[#visible + 1] = position
    visible[#visible + 1] = n
  else
    delayed[#delayed + 1] = tonumber(due)
    delayed[#delayed + 1] = n
    delayed_expiries[#delayed_expiries + 1] = expires
    delayed_expiries[#delayed_expiries + 1] = n
  end
  bodies[#bodies + 1] = n
  bodies[#bodies + 1] = body
  states[#states + 1] = n
  states[#states + 1] = cmsgpack.pack(now, expires, at, '', 0, client)
  expiries[#expiries + 1] = expires
  expiries[#expiries + 1] = n
end
each_batch('HSET', BODIES, bodies)
each_batch('HSET', STATES, states)
each_batch('ZADD', EXPIRIES, expiries)
each_batch('ZADD', VISIBLE, visible)
each_batch('ZADD', ELIGIBLE, visible)
each_batch('ZADD', DELAYED, delayed)
each_batch('ZADD', DELAYED_EXPIRIES, delayed_expiries)
redis.call('HSET', QUEUE, 'pos', position)
return {inc, first}
