-- Record a queue in its project's index (KEYS: names zset, incarnations hash), unless the index already knows
-- the same or a later incarnation of that name (incarnations only grow).
-- ARGV: name, incarnation. Returns 1 when recorded, else 0.
local stored = redis.call('HGET', KEYS[2], ARGV[1])
if stored and tonumber(stored) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], 0, ARGV[1])
return 1
