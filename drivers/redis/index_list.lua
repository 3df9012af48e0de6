-- Up to `count` names of the project's index (KEYS: names zset, incarnations hash) after `after` ('' for the
-- start), by name, each with the incarnation recorded for it.
-- ARGV: after, count. Returns {name, incarnation, name, incarnation, ...}.
local low = '-'
if ARGV[1] ~= '' then
  low = '(' .. ARGV[1]
end
local names = redis.call('ZRANGEBYLEX', KEYS[1], low, '+', 'LIMIT', 0, tonumber(ARGV[2]))
if #names == 0 then
  return {}
end
local incarnations = redis.call('HMGET', KEYS[2], unpack(names))
local out = {}
for i, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = incarnations[i] or '0'
end
return out
