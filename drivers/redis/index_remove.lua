-- Forget a queue in its project's index (KEYS: names zset, incarnations hash), only if the index still records
-- the incarnation known to be gone: a later incarnation of the same name, created meanwhile, stays listed.
-- ARGV: name, incarnation. Returns 1 when forgotten, else 0.
if tonumber(redis.call('HGET', KEYS[2], ARGV[1])) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
