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

-- The members of a reply of member, score pairs (WITHSCORES, ZPOPMIN), in order.
local function members(reply)
  local found = {}
  for i = 1, #reply, 2 do
    found[#found + 1] = reply[i]
  end
  return found
end

local function incarnation()
  return tonumber(redis.call('HGET', QUEUE, 'inc'))
end

local function unpacked(n, packed)
  local created, expires, position, claim, claim_expires, client = cmsgpack.unpack(packed)
  return {n = tonumber(n), created = created, expires = expires, position = position, claim = claim,
          claim_expires = claim_expires, client = client}
end

-- A message's state, or nil: {n, created, expires, position (0: delayed), claim ('' : none), claim_expires, client}.
local function load(n)
  local packed = redis.call('HGET', STATES, n)
  if not packed then
    return nil
  end
  return unpacked(n, packed)
end

-- The fields `numbers` of hash `key` (HMGET, BATCH at a time): false where there is none.
local function fields(key, numbers)
  local found = {}
  for first = 1, #numbers, BATCH do
    local part = redis.call('HMGET', key, unpack(numbers, first, math.min(first + BATCH - 1, #numbers)))
    for i = 1, #part do
      found[first + i - 1] = part[i]
    end
  end
  return found
end

-- The states of `numbers`, in their order: states[i] is numbers[i]'s, or nil.
local function load_many(numbers)
  local packed, states = fields(STATES, numbers), {}
  for i = 1, #numbers do
    if packed[i] then
      states[i] = unpacked(numbers[i], packed[i])
    end
  end
  return states
end

local function pack(m)
  return cmsgpack.pack(m.created, m.expires, m.position, m.claim, m.claim_expires, m.client)
end

local function save_many(messages)
  local flat = {}
  for _, m in ipairs(messages) do
    flat[#flat + 1] = m.n
    flat[#flat + 1] = pack(m)
  end
  each_batch('HSET', STATES, flat)
end

local function numbers_of(messages)
  local numbers = {}
  for i, m in ipairs(messages) do
    numbers[i] = m.n
  end
  return numbers
end

-- A message as the driver reads it: number, body, created, expires, claim id, claim expiry, position.
local function row(m, body)
  local lease = 0 -- no claim: no lease to read
  if m.claim ~= '' then
    lease = fmt(m.claim_expires)
  end
  return {m.n, body, fmt(m.created), fmt(m.expires), m.claim, lease, m.position}
end

-- Append the rows of `messages` to `out`, their bodies read in one HMGET.
local function add_rows(out, messages)
  local bodies = fields(BODIES, numbers_of(messages))
  for i, m in ipairs(messages) do
    out[#out + 1] = row(m, bodies[i])
  end
  return out
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

-- Lift each message's expiry to at least `floor`; the caller saves them.
local function extend(messages, floor)
  local lifted = {}
  for _, m in ipairs(messages) do
    if floor > m.expires then
      m.expires = floor
      lifted[#lifted + 1] = floor
      lifted[#lifted + 1] = m.n
    end
  end
  each_batch('ZADD', EXPIRIES, lifted)
end

-- Remove messages: bodies, states and every index entry.
local function remove(numbers)
  each_batch('HDEL', BODIES, numbers)
  each_batch('HDEL', STATES, numbers)
  for _, index in ipairs({VISIBLE, ELIGIBLE, CLAIMED, EXPIRIES, DELAYED, DELAYED_EXPIRIES}) do
    each_batch('ZREM', index, numbers)
  end
end

-- Remove messages whose states are loaded: a visible one is in no delayed index, a delayed one in no position
-- index, so only the indexes it can be in are touched.
local function remove_loaded(messages)
  local visible, delayed, all = {}, {}, numbers_of(messages)
  for _, m in ipairs(messages) do
    if m.position > 0 then
      visible[#visible + 1] = m.n
    else
      delayed[#delayed + 1] = m.n
    end
  end
  each_batch('HDEL', BODIES, all)
  each_batch('HDEL', STATES, all)
  each_batch('ZREM', EXPIRIES, all)
  for _, index in ipairs({VISIBLE, ELIGIBLE, CLAIMED}) do
    each_batch('ZREM', index, visible)
  end
  for _, index in ipairs({DELAYED, DELAYED_EXPIRIES}) do
    each_batch('ZREM', index, delayed)
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
  local ordered = {}
  for i, entry in ipairs(order) do
    ordered[i] = entry[1]
  end
  local states, shown, moved = load_many(ordered), {}, {}
  for i = 1, #ordered do
    local m = states[i]
    if m and m.expires > now then
      position = position + 1
      m.position = position
      moved[#moved + 1] = m
      shown[#shown + 1] = position
      shown[#shown + 1] = m.n
    end
  end
  save_many(moved)
  local numbers = members(due)
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
  local states, back = load_many(expired), {}
  for i = 1, #expired do
    local m = states[i]
    if m and m.expires > now and m.position > 0 then
      back[#back + 1] = m.position
      back[#back + 1] = m.n
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

-- Take up to `limit` of the oldest eligible messages out of ELIGIBLE, oldest first, each as its state: the caller
-- claims or removes them. Entries popped on the way that are not eligible stay out of ELIGIBLE: a dead message's
-- leaves VISIBLE too (gc removes the message itself), and one a live claim holds goes back to CLAIMED (a client
-- whose clock ran ahead gave it back early). Call settle first.
local function oldest_eligible(now, limit)
  local found = {}
  while #found < limit do
    local wanted = limit - #found
    local numbers = members(redis.call('ZPOPMIN', ELIGIBLE, wanted))
    local states, dead, still_held = load_many(numbers), {}, {}
    for i, n in ipairs(numbers) do
      local m = states[i]
      if m and m.expires > now and not held(m, now) then
        found[#found + 1] = m
      elseif not m or m.expires <= now then
        dead[#dead + 1] = n
      else
        still_held[#still_held + 1] = m.claim_expires
        still_held[#still_held + 1] = n
      end
    end
    each_batch('ZREM', VISIBLE, dead)
    each_batch('ZADD', CLAIMED, still_held)
    if #numbers < wanted then
      break
    end
  end
  return found
end
