-- The raw floor on Redis: one short script per operation, on the Redis driver's own keys and encodings
-- (drivers/redis/keys.py, lib.lua): bodies hash b, packed states hash s (cmsgpack: created, expires, position,
-- claim id, claim expiry, client), zsets v (visible, by position), e (eligible: no live claim known), c (claimed,
-- by lease end), x (by expiry), claims hash h and zset k. Each script names the keys it takes (KEYS) in its
-- comment; floors/redis.py passes exactly those. Times come in ARGV from the client's clock. The floor posts no
-- delayed messages and expects none, so it never promotes. Each statement is named by the comment line above it;
-- "lib" is prepended to every other.

-- name: lib
-- The members of a reply of member, score pairs (ZPOPMIN, WITHSCORES).
local function members(pairs)
  local found = {}
  for i = 1, #pairs, 2 do
    found[#found + 1] = pairs[i]
  end
  return found
end

-- Messages of C whose lease ended go back to E at their positions (the claim index stays exact for claims).
local function release(now_text, now, S, E, C)
  local ended = redis.call('ZRANGEBYSCORE', C, '-inf', now_text)
  if #ended == 0 then
    return
  end
  local states = redis.call('HMGET', S, unpack(ended))
  local back = {}
  for i = 1, #ended do
    if states[i] then
      local _, expires, position = cmsgpack.unpack(states[i])
      if expires > now and position > 0 then
        back[#back + 1] = position
        back[#back + 1] = ended[i]
      end
    end
  end
  redis.call('ZREM', C, unpack(ended))
  if #back > 0 then
    redis.call('ZADD', E, unpack(back))
  end
end

-- The reply of a claim or pop: the incarnation, then number, body, position of each message taken.
local function taken_reply(inc, taken, bodies)
  local out = {inc}
  for i, m in ipairs(taken) do
    out[#out + 1] = m.n
    out[#out + 1] = bodies[i]
    out[#out + 1] = m.position
  end
  return out
end

-- Remove messages: their bodies and states, and their entries in v and x.
local function remove(numbers, B, S, V, X)
  redis.call('HDEL', B, unpack(numbers))
  redis.call('HDEL', S, unpack(numbers))
  redis.call('ZREM', V, unpack(numbers))
  redis.call('ZREM', X, unpack(numbers))
end

-- Pop up to `limit` of the oldest entries of E that are eligible, oldest first, as unpacked states. An entry a
-- live claim holds goes to C; a dead one is dropped (gc removes the message through x).
local function take(now, limit, S, E, C)
  local found = {}
  while #found < limit do
    local wanted = limit - #found
    local popped = redis.call('ZPOPMIN', E, wanted)
    if #popped == 0 then
      break
    end
    local numbers = members(popped)
    local states = redis.call('HMGET', S, unpack(numbers))
    local held = {}
    for i = 1, #numbers do
      if states[i] then
        local created, expires, position, claim, claim_expires, client = cmsgpack.unpack(states[i])
        if expires > now then
          if claim ~= '' and claim_expires > now then
            held[#held + 1] = claim_expires
            held[#held + 1] = numbers[i]
          else
            found[#found + 1] = {n = tonumber(numbers[i]), created = created, expires = expires, position = position,
                                 client = client}
          end
        end
      end
    end
    if #held > 0 then
      redis.call('ZADD', C, unpack(held))
    end
    if #popped < 2 * wanted then
      break
    end
  end
  return found
end

-- A post: both counters moved by the batch, then every message written and indexed, all in one step.
-- KEYS: q b s v e x. ARGV: now, client, then body, expires per message. Returns {incarnation, first number}.
-- name: post
local Q, B, S, V, E, X = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local inc = redis.call('HGET', Q, 'inc')
if not inc then
  return false
end
local now, client = tonumber(ARGV[1]), ARGV[2]
local count = (#ARGV - 2) / 2
local first = redis.call('HINCRBY', Q, 'num', count) - count + 1
local position = redis.call('HINCRBY', Q, 'pos', count) - count
local bodies, states, expiries, positions = {}, {}, {}, {}
for i = 0, count - 1 do
  local n, expires = first + i, tonumber(ARGV[4 + 2 * i])
  position = position + 1
  bodies[2 * i + 1], bodies[2 * i + 2] = n, ARGV[3 + 2 * i]
  states[2 * i + 1], states[2 * i + 2] = n, cmsgpack.pack(now, expires, position, '', 0, client)
  expiries[2 * i + 1], expiries[2 * i + 2] = expires, n
  positions[2 * i + 1], positions[2 * i + 2] = position, n
end
redis.call('HSET', B, unpack(bodies))
redis.call('HSET', S, unpack(states))
redis.call('ZADD', X, unpack(expiries))
redis.call('ZADD', V, unpack(positions))
redis.call('ZADD', E, unpack(positions))
return {inc, first}

-- A page: the live messages after position `after` in v (every visible one) or e (those no live claim holds),
-- read until the page is full or the index ends. A marker of another incarnation starts at the head.
-- KEYS: q b s (v or e) e c. ARGV: now, after, limit, include_claimed (1/0), the marker's incarnation ('' none).
-- Returns {incarnation, last position, after as used, then number, body, position per message}.
-- name: page
local Q, B, S, INDEX, E, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local head = redis.call('HMGET', Q, 'inc', 'pos')
if not head[1] then
  return false
end
local now, after, limit, include_claimed = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
if ARGV[5] ~= '' and tonumber(ARGV[5]) ~= tonumber(head[1]) then
  after = '0'
end
if not include_claimed then
  release(ARGV[1], now, S, E, C)
end
local out = {head[1], head[2], after}
local found, cursor = 0, '(' .. after
while found < limit do
  local wanted = limit - found
  local page = redis.call('ZRANGEBYSCORE', INDEX, cursor, '+inf', 'WITHSCORES', 'LIMIT', 0, wanted)
  if #page == 0 then
    break
  end
  local numbers = members(page)
  local states = redis.call('HMGET', S, unpack(numbers))
  local bodies = redis.call('HMGET', B, unpack(numbers))
  for i = 1, #numbers do
    if states[i] then
      local _, expires, position, claim, claim_expires = cmsgpack.unpack(states[i])
      if expires > now and (include_claimed or claim == '' or claim_expires <= now) then
        out[#out + 1] = numbers[i]
        out[#out + 1] = bodies[i]
        out[#out + 1] = position
        found = found + 1
      end
    end
  end
  cursor = '(' .. page[#page]
  if #page < 2 * wanted then
    break
  end
end
return out

-- A claim: the oldest eligible messages taken from e, held until `expires` in their states and c, their expiry
-- lifted to `floor`, and the claim recorded.
-- KEYS: q b s e c x h k. ARGV: now, claim id, ttl, expires, floor, limit.
-- Returns {incarnation, then number, body, position per message}.
-- name: claim
local Q, B, S, E, C, X, H, K = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local inc = redis.call('HGET', Q, 'inc')
if not inc then
  return false
end
local now, id, ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local expires, floor, limit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
release(ARGV[1], now, S, E, C)
local taken = take(now, limit, S, E, C)
if #taken == 0 then
  return {inc}
end
local numbers, states, claimed, lifted = {}, {}, {}, {}
for _, m in ipairs(taken) do
  local lives = m.expires
  if floor > lives then
    lives = floor
    lifted[#lifted + 1] = floor
    lifted[#lifted + 1] = m.n
  end
  numbers[#numbers + 1] = m.n
  states[#states + 1] = m.n
  states[#states + 1] = cmsgpack.pack(m.created, lives, m.position, id, expires, m.client)
  claimed[#claimed + 1] = expires
  claimed[#claimed + 1] = m.n
end
redis.call('HSET', S, unpack(states))
redis.call('ZADD', C, unpack(claimed))
if #lifted > 0 then
  redis.call('ZADD', X, unpack(lifted))
end
redis.call('HSET', H, id, cmsgpack.pack(ttl, now, expires, numbers))
redis.call('ZADD', K, expires, id)
return taken_reply(inc, taken, redis.call('HMGET', B, unpack(numbers)))

-- A delete of the given messages of this incarnation that no live claim holds (claim ''), or that the live claim
-- `claim` holds; the others are left alone.
-- KEYS: q b s v e c x. ARGV: now, claim id ('' for none), incarnation, then the numbers. Returns how many went.
-- name: delete
local Q, B, S, V, E, C, X = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local now, claim = tonumber(ARGV[1]), ARGV[2]
if tonumber(redis.call('HGET', Q, 'inc')) ~= tonumber(ARGV[3]) then
  return 0
end
local numbers = {unpack(ARGV, 4)}
local states = redis.call('HMGET', S, unpack(numbers))
local gone = {}
for i = 1, #numbers do
  if states[i] then
    local _, expires, _, holder, lease = cmsgpack.unpack(states[i])
    local held = holder ~= '' and lease > now
    if expires > now and ((claim == '' and not held) or (held and holder == claim)) then
      gone[#gone + 1] = numbers[i]
    end
  end
end
if #gone == 0 then
  return 0
end
remove(gone, B, S, V, X)
redis.call('ZREM', C, unpack(gone))
if claim == '' then
  redis.call('ZREM', E, unpack(gone))
end
return #gone

-- A pop: the oldest eligible messages taken from e and removed.
-- KEYS: q b s v e c x. ARGV: now, limit. Returns {incarnation, then number, body, position per message}.
-- name: pop
local Q, B, S, V, E, C, X = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local inc = redis.call('HGET', Q, 'inc')
if not inc then
  return false
end
local now = tonumber(ARGV[1])
release(ARGV[1], now, S, E, C)
local taken = take(now, tonumber(ARGV[2]), S, E, C)
if #taken == 0 then
  return {inc}
end
local numbers = {}
for _, m in ipairs(taken) do
  numbers[#numbers + 1] = m.n
end
local bodies = redis.call('HMGET', B, unpack(numbers))
remove(numbers, B, S, V, X)
return taken_reply(inc, taken, bodies)

-- Queues (not measured): created with a fresh incarnation, then listed in the project's index, as the driver does.
-- KEYS: q. ARGV: incarnation. Returns the queue's incarnation.
-- name: create_queue
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'inc', ARGV[1], 'meta', '{}', 'pos', 0, 'num', 0)
end
return tonumber(redis.call('HGET', KEYS[1], 'inc'))

-- KEYS: names, incarnations (the project's index). ARGV: name, incarnation, 1 to list it or 0 to forget it.
-- name: index
local stored = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if ARGV[3] == '1' and (not stored or stored < tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
elseif ARGV[3] == '0' and stored == tonumber(ARGV[2]) then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0

-- KEYS: every key of the queue, q first. Returns the incarnation removed, or nil.
-- name: drop_queue
local inc = redis.call('HGET', KEYS[1], 'inc')
if inc then
  redis.call('UNLINK', unpack(KEYS))
end
return inc
