-- The raw floor on PostgreSQL (psycopg 3, autocommit; a transaction only where a post needs two statements).

-- name: create_queue
INSERT INTO {p}queues (project, name, metadata) VALUES (%(project)s, %(queue)s, '{}') ON CONFLICT DO NOTHING

-- Post, in one transaction: lock the queue row and advance its counters, then one multi-row INSERT.
-- name: advance
UPDATE {p}queues SET last_position = last_position + %(n)s, last_number = last_number + %(n)s
WHERE project = %(project)s AND name = %(queue)s
RETURNING id, last_position, last_number

-- A claim: one UPDATE of the oldest eligible rows, chosen FOR UPDATE SKIP LOCKED, recording the claim row. The
-- queue is a scalar subquery (a parameter to the planner), so the rows come off the position index in order.
-- name: claim
WITH chosen AS (
    SELECT queue_id, number FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > 0 AND expires > %(now)s AND (claim_expires IS NULL OR claim_expires <= %(now)s)
    ORDER BY position LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
taken AS (
    UPDATE {p}messages m
    SET claim_id = %(claim)s, claim_expires = %(expires)s, expires = GREATEST(m.expires, %(floor)s)
    FROM chosen WHERE m.queue_id = chosen.queue_id AND m.number = chosen.number
    RETURNING m.queue_id, m.number, m.position, m.body
),
recorded AS (
    INSERT INTO {p}claims (id, queue_id, ttl, created, expires)
    SELECT %(claim)s, queue_id, %(ttl)s, %(now)s, %(expires)s FROM taken LIMIT 1
)
SELECT queue_id, number, position, body FROM taken

-- A pop: one DELETE of the oldest eligible rows, chosen FOR UPDATE SKIP LOCKED.
-- name: pop
WITH chosen AS (
    SELECT queue_id, number FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > 0 AND expires > %(now)s AND (claim_expires IS NULL OR claim_expires <= %(now)s)
    ORDER BY position LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM {p}messages m USING chosen
WHERE m.queue_id = chosen.queue_id AND m.number = chosen.number
RETURNING m.queue_id, m.number, m.position, m.body

-- After a bulk fill, so the planner knows the queue is deep (as autovacuum would tell it for a queue filled by
-- posts).
-- name: analyze
ANALYZE {p}messages
