-- The prelude of every queue script (the driver prepends it): the queue's keys and the steps scripts share.
--
-- KEYS are the queue's keys in drivers/redis/keys.py's QUEUE_KEYS order, all in one hash slot. Times come in
-- ARGV from the driver's clock (seconds since the epoch); no script reads the server's clock. A message is alive
-- while expires > now, a claim live while its expiry > now. Numbers given to redis.call keep their full
-- precision; times going back to the driver are formatted with %.17g, which round-trips a double exactly.

local QUEUE, BODIES, STATES, VISIBLE, ELIGIBLE, CLAIMED, EXPIRIES, DELAYED, DELAYED_EXPIRIES, CLAIMS, CLAIM_EXPIRIES =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]

local BATCH = 1000 -- values per variadic command: well below Lua's stack limit for unpack

local function fmt(x)
  return string.format('%.17g', x)
end

-- Variadic commands over a long list of arguments, BATCH at a time.
local function each_batch(command, key, values)
  for first = 1, #values, BATCH do
    redis.call(command, key, unpack(values, first, math.min(first + BATCH - 1, #values)))
  end
end

local function incarnation()
  return tonumber(redis.call('HGET', QUEUE, 'inc'))
end

-- A message's state, or nil: {n, created, expires, position (0: delayed), claim ('' : none), claim_expires, client}.
local function load(n)
  local packed = redis.call('HGET', STATES, n)
  if not packed then
    return nil
  end
  local created, expires, position, claim, claim_expires, client = cmsgpack.unpack(packed)
  return {n = tonumber(n), created = created, expires = expires, position = position, claim = claim,
          claim_expires = claim_expires, client = client}
end

local function save(m)
  redis.call('HSET', STATES, m.n, cmsgpack.pack(m.created, m.expires, m.position, m.claim, m.claim_expires, m.client))
end

-- A message as the driver reads it: number, body, created, expires, claim id, claim expiry, position.
local function row(m, body)
  return {m.n, body or redis.call('HGET', BODIES, m.n), fmt(m.created), fmt(m.expires), m.claim, fmt(m.claim_expires),
          m.position}
end

local function held(m, now)
  return m.claim ~= '' and m.claim_expires > now
end

-- Whether a delete given `claim` ('' for none) may remove the message now: no live claim holds it, or that one.
local function deletable(m, claim, now)
  if claim == '' then
    return not held(m, now)
  end
  return m.claim == claim and held(m, now)
end

-- A claim as stored, or nil: {ttl, created, expires (lease end), numbers (the messages it took)}.
local function load_claim(id)
  local packed = redis.call('HGET', CLAIMS, id)
  if not packed then
    return nil
  end
  local ttl, created, expires, numbers = cmsgpack.unpack(packed)
  return {ttl = ttl, created = created, expires = expires, numbers = numbers}
end

-- Lift a message's expiry to at least `floor`; the caller saves it.
local function extend(m, floor)
  if floor > m.expires then
    m.expires = floor
    redis.call('ZADD', EXPIRIES, floor, m.n)
  end
end

local function remove(n)
  redis.call('HDEL', BODIES, n)
  redis.call('HDEL', STATES, n)
  for _, index in ipairs({VISIBLE, ELIGIBLE, CLAIMED, EXPIRIES, DELAYED, DELAYED_EXPIRIES}) do
    redis.call('ZREM', index, n)
  end
end

-- Give due delayed messages the next positions, in order of due time, then number. Those that died before they
-- were due never get one.
local function promote(now)
  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'WITHSCORES')
  if #due == 0 then
    return
  end
  local order = {}
  for i = 1, #due, 2 do
    order[#order + 1] = {tonumber(due[i]), tonumber(due[i + 1])}
  end
  table.sort(order, function(a, b)
    if a[2] ~= b[2] then
      return a[2] < b[2]
    end
    return a[1] < b[1]
  end)
  local position = tonumber(redis.call('HGET', QUEUE, 'pos'))
  local shown = {}
  for _, entry in ipairs(order) do
    local n = entry[1]
    local m = load(n)
    if m and m.expires > now then
      position = position + 1
      m.position = position
      save(m)
      shown[#shown + 1] = position
      shown[#shown + 1] = n
    end
  end
  local numbers = {}
  for i = 1, #due, 2 do
    numbers[#numbers + 1] = due[i]
  end
  each_batch('ZREM', DELAYED, numbers)
  each_batch('ZREM', DELAYED_EXPIRIES, numbers)
  if #shown > 0 then
    each_batch('ZADD', VISIBLE, shown)
    each_batch('ZADD', ELIGIBLE, shown)
    redis.call('HSET', QUEUE, 'pos', position)
  end
end

-- Messages whose claim has expired are eligible again: back into ELIGIBLE at their positions.
local function release_expired(now)
  local expired = redis.call('ZRANGEBYSCORE', CLAIMED, '-inf', now)
  if #expired == 0 then
    return
  end
  local back = {}
  for _, n in ipairs(expired) do
    local m = load(n)
    if m and m.expires > now and m.position > 0 then
      back[#back + 1] = m.position
      back[#back + 1] = n
    end
  end
  each_batch('ZREM', CLAIMED, expired)
  if #back > 0 then
    each_batch('ZADD', ELIGIBLE, back)
  end
end

-- Make the queue as it is at `now`: due delayed messages visible, expired claims' messages eligible.
local function settle(now)
  promote(now)
  release_expired(now)
end

-- Up to `limit` of the oldest eligible messages, oldest first, each as its state. Entries met on the way that
-- are not eligible leave ELIGIBLE: a dead message's leaves VISIBLE too (gc removes the message itself), and one a
-- live claim holds goes back to CLAIMED (a client whose clock ran ahead gave it back early). Call settle first.
local function oldest_eligible(now, limit)
  local found = {}
  local kept = 0 -- entries left in ELIGIBLE ahead of the next window
  while #found < limit do
    local wanted = limit - #found
    local numbers = redis.call('ZRANGE', ELIGIBLE, kept, kept + wanted - 1)
    local stale, dead, still_held = {}, {}, {}
    for _, n in ipairs(numbers) do
      local m = load(n)
      if m and m.expires > now and not held(m, now) then
        found[#found + 1] = m
        kept = kept + 1
      else
        stale[#stale + 1] = n
        if not m or m.expires <= now then
          dead[#dead + 1] = n
        else
          still_held[#still_held + 1] = m.claim_expires
          still_held[#still_held + 1] = n
        end
      end
    end
    each_batch('ZREM', ELIGIBLE, stale)
    each_batch('ZREM', VISIBLE, dead)
    each_batch('ZADD', CLAIMED, still_held)
    if #numbers < wanted then
      break
    end
  end
  return found
end
