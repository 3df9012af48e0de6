-- Create the queue with the given (fresh) incarnation, or replace its metadata.
-- ARGV: incarnation, metadata.
-- Returns {1 if created else 0, the queue's incarnation}.
if redis.call('EXISTS', QUEUE) == 1 then
  redis.call('HSET', QUEUE, 'meta', ARGV[2])
  return {0, incarnation()}
end
redis.call('HSET', QUEUE, 'inc', ARGV[1], 'meta', ARGV[2], 'pos', 0, 'num', 0)
return {1, tonumber(ARGV[1])}
