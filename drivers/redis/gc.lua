-- Collect one queue: promote due delayed messages, give expired claims' messages back, then remove up to `chunk`
-- expired messages and up to `chunk` expired claims.
-- ARGV: now, chunk.
-- Returns {removed, 1 if a chunk was full (call again) else 0}; {0, 0} when there is no such queue.
local now, chunk = tonumber(ARGV[1]), tonumber(ARGV[2])
if not incarnation() then
  return {0, 0}
end
settle(now)
local expired = redis.call('ZRANGEBYSCORE', EXPIRIES, '-inf', now, 'LIMIT', 0, chunk)
remove(expired)
local claims = redis.call('ZRANGEBYSCORE', CLAIM_EXPIRIES, '-inf', now, 'LIMIT', 0, chunk)
each_batch('HDEL', CLAIMS, claims)
each_batch('ZREM', CLAIM_EXPIRIES, claims)
local more = 0
if #expired == chunk or #claims == chunk then
  more = 1
end
return {#expired + #claims, more}
