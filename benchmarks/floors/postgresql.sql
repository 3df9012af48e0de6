-- The raw floor on PostgreSQL (psycopg 3, autocommit; a transaction only where a post needs two statements).
-- {p} is the run's table prefix. Each statement is named by the comment line above it.

-- name: create_queue
INSERT INTO {p}queues (project, name, metadata) VALUES (%(project)s, %(queue)s, '{}') ON CONFLICT DO NOTHING

-- name: queue_id
SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s

-- name: drop_messages
DELETE FROM {p}messages WHERE queue_id = %(queue_id)s

-- name: drop_claims
DELETE FROM {p}claims WHERE queue_id = %(queue_id)s

-- name: drop_queue
DELETE FROM {p}queues WHERE id = %(queue_id)s

-- Post, in one transaction: lock the queue row and advance its counters, then one multi-row INSERT.
-- name: advance
UPDATE {p}queues SET last_position = last_position + %(n)s, last_number = last_number + %(n)s
WHERE project = %(project)s AND name = %(queue)s
RETURNING id, last_position, last_number

-- name: insert
INSERT INTO {p}messages (queue_id, number, position, client, body, created, expires, visible_at) VALUES

-- name: insert_row
(%s, %s, %s, %s, %s, %s, %s, %s)

-- A page: the queue's incarnation and position counter (kind 0), then the page (kind 1), in one snapshot.
-- name: page
SELECT 0, id, last_position, CAST(NULL AS TEXT) FROM {p}queues WHERE project = %(project)s AND name = %(queue)s
UNION ALL
SELECT * FROM (
    SELECT 1, number, position, body FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > %(after)s AND expires > %(now)s
    ORDER BY position LIMIT %(limit)s
) page

-- name: unclaimed_page
SELECT 0, id, last_position, CAST(NULL AS TEXT) FROM {p}queues WHERE project = %(project)s AND name = %(queue)s
UNION ALL
SELECT * FROM (
    SELECT 1, number, position, body FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > %(after)s AND expires > %(now)s
      AND (claim_expires IS NULL OR claim_expires <= %(now)s)
    ORDER BY position LIMIT %(limit)s
) page

-- A claim: one UPDATE of the oldest eligible rows, chosen FOR UPDATE SKIP LOCKED, recording the claim row.
-- name: claim
WITH q AS (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s),
chosen AS (
    SELECT m.queue_id, m.number FROM {p}messages m JOIN q ON m.queue_id = q.id
    WHERE m.position > 0 AND m.expires > %(now)s AND (m.claim_expires IS NULL OR m.claim_expires <= %(now)s)
    ORDER BY m.position LIMIT %(limit)s
    FOR UPDATE OF m SKIP LOCKED
),
taken AS (
    UPDATE {p}messages m
    SET claim_id = %(claim)s, claim_expires = %(expires)s, expires = GREATEST(m.expires, %(floor)s)
    FROM chosen WHERE m.queue_id = chosen.queue_id AND m.number = chosen.number
    RETURNING m.queue_id, m.number, m.position, m.body
),
recorded AS (
    INSERT INTO {p}claims (id, queue_id, ttl, created, expires)
    SELECT %(claim)s, q.id, %(ttl)s, %(now)s, %(expires)s FROM q WHERE EXISTS (SELECT 1 FROM taken)
)
SELECT queue_id, number, position, body FROM taken

-- name: pop
WITH q AS (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s),
chosen AS (
    SELECT m.queue_id, m.number FROM {p}messages m JOIN q ON m.queue_id = q.id
    WHERE m.position > 0 AND m.expires > %(now)s AND (m.claim_expires IS NULL OR m.claim_expires <= %(now)s)
    ORDER BY m.position LIMIT %(limit)s
    FOR UPDATE OF m SKIP LOCKED
)
DELETE FROM {p}messages m USING chosen
WHERE m.queue_id = chosen.queue_id AND m.number = chosen.number
RETURNING m.queue_id, m.number, m.position, m.body

-- A delete: one DELETE checking the queue and the claim in its WHERE clause.
-- name: delete_claimed
DELETE FROM {p}messages
WHERE queue_id = %(queue_id)s AND number = %(number)s AND expires > %(now)s
  AND claim_id = %(claim)s AND claim_expires > %(now)s
  AND queue_id IN (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)

-- name: delete_unclaimed
DELETE FROM {p}messages
WHERE queue_id = %(queue_id)s AND number = %(number)s AND expires > %(now)s
  AND (claim_expires IS NULL OR claim_expires <= %(now)s)
  AND queue_id IN (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)

-- name: bulk_delete_claimed
DELETE FROM {p}messages
WHERE queue_id = %(queue_id)s AND number IN ({numbers}) AND expires > %(now)s
  AND claim_id = %(claim)s AND claim_expires > %(now)s
  AND queue_id IN (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)

-- name: bulk_delete_unclaimed
DELETE FROM {p}messages
WHERE queue_id = %(queue_id)s AND number IN ({numbers}) AND expires > %(now)s
  AND (claim_expires IS NULL OR claim_expires <= %(now)s)
  AND queue_id IN (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)

-- Filling a deep queue (not measured): rows copied in, claims recorded, counters moved once.
-- name: fill_claim
INSERT INTO {p}claims (id, queue_id, ttl, created, expires) VALUES (%s, %s, %s, %s, %s)


-- What one commit costs here (reported with the durability settings): single-row inserts, each its own commit.
-- name: probe_create
CREATE TABLE {p}probe (x INTEGER)

-- name: probe_insert
INSERT INTO {p}probe (x) VALUES (1)

-- name: probe_drop
DROP TABLE {p}probe
