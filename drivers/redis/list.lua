-- One page: up to `limit` visible, unexpired messages strictly after position `after`, in position order, leaving
-- out the hidden client's and, unless include_claimed, those a live claim holds; scanned until the page is full
-- or the queue ends, so a short page has examined everything up to the last position returned with it.
-- ARGV: now, after, limit, hidden client ('' for none), include_claimed ('1' or '0').
-- Returns {incarnation, last position, row...}; nil when there is no such queue.
local now, after, limit, hide, include_claimed = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1'
local inc = incarnation()
if not inc then
  return false
end
local index = VISIBLE
if include_claimed then
  promote(now)
else
  settle(now)
  index = ELIGIBLE -- exactly the visible messages no live claim holds
end
local out = {inc, tonumber(redis.call('HGET', QUEUE, 'pos'))}
local found, cursor, dead = {}, '(' .. after, {}
while #found < limit do
  local page = redis.call('ZRANGEBYSCORE', index, cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
  local numbers = members(page)
  local states = load_many(numbers)
  for i = 1, #numbers do
    local m = states[i]
    if not m or m.expires <= now then
      dead[#dead + 1] = numbers[i]
    elseif m.client ~= hide and (include_claimed or not held(m, now)) then
      found[#found + 1] = m
      if #found == limit then
        break
      end
    end
    cursor = '(' .. page[2 * i]
  end
  if #page < 2 * limit then
    break
  end
end
add_rows(out, found)
each_batch('ZREM', VISIBLE, dead)
each_batch('ZREM', ELIGIBLE, dead)
return out
