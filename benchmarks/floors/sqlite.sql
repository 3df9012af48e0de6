-- The raw floor on SQLite (the sqlite3 module, autocommit; BEGIN IMMEDIATE where a write takes two
-- statements). {p} is the run's table prefix; %(name)s placeholders become :name.

-- name: create_queue
INSERT OR IGNORE INTO {p}queues (project, name, metadata) VALUES (%(project)s, %(queue)s, '{}')

-- name: queue_id
SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s

-- name: drop_messages
DELETE FROM {p}messages WHERE queue_id = %(queue_id)s

-- name: drop_claims
DELETE FROM {p}claims WHERE queue_id = %(queue_id)s

-- name: drop_queue
DELETE FROM {p}queues WHERE id = %(queue_id)s

-- Post, in one write transaction: advance the queue's counters, then one multi-row INSERT.
-- name: advance
UPDATE {p}queues SET last_position = last_position + %(n)s, last_number = last_number + %(n)s
WHERE project = %(project)s AND name = %(queue)s
RETURNING id, last_position, last_number

-- name: insert
INSERT INTO {p}messages (queue_id, number, position, client, body, created, expires, visible_at) VALUES

-- name: insert_row
(?, ?, ?, ?, ?, ?, ?, ?)

-- A page: the queue's incarnation and position counter (kind 0), then the page (kind 1), in one snapshot.
-- name: page
SELECT 0, id, last_position, NULL FROM {p}queues WHERE project = %(project)s AND name = %(queue)s
UNION ALL
SELECT * FROM (
    SELECT 1, number, position, body FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > %(after)s AND expires > %(now)s
    ORDER BY position LIMIT %(limit)s
)

-- name: unclaimed_page
SELECT 0, id, last_position, NULL FROM {p}queues WHERE project = %(project)s AND name = %(queue)s
UNION ALL
SELECT * FROM (
    SELECT 1, number, position, body FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > %(after)s AND expires > %(now)s
      AND (claim_expires IS NULL OR claim_expires <= %(now)s)
    ORDER BY position LIMIT %(limit)s
)

-- A claim, in one write transaction: one UPDATE of the oldest eligible rows, then the claim row.
-- name: claim
UPDATE {p}messages SET claim_id = %(claim)s, claim_expires = %(expires)s, expires = MAX(expires, %(floor)s)
WHERE (queue_id, number) IN (
    SELECT queue_id, number FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > 0 AND expires > %(now)s AND (claim_expires IS NULL OR claim_expires <= %(now)s)
    ORDER BY position LIMIT %(limit)s
)
RETURNING queue_id, number, position, body

-- name: record_claim
INSERT INTO {p}claims (id, queue_id, ttl, created, expires) VALUES (%(claim)s, %(queue_id)s, %(ttl)s, %(now)s, %(expires)s)

-- A pop: one DELETE of the oldest eligible rows.
-- name: pop
DELETE FROM {p}messages
WHERE (queue_id, number) IN (
    SELECT queue_id, number FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > 0 AND expires > %(now)s AND (claim_expires IS NULL OR claim_expires <= %(now)s)
    ORDER BY position LIMIT %(limit)s
)
RETURNING queue_id, number, position, body

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

-- Filling a deep queue (not measured).
-- name: fill_row
INSERT INTO {p}messages (queue_id, number, position, client, body, created, expires, visible_at, claim_id,
                         claim_expires)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: fill_claim
INSERT INTO {p}claims (id, queue_id, ttl, created, expires) VALUES (?, ?, ?, ?, ?)


-- What one commit costs here (reported with the durability settings): single-row inserts, each its own commit.
-- name: probe_create
CREATE TABLE {p}probe (x INTEGER)

-- name: probe_insert
INSERT INTO {p}probe (x) VALUES (1)

-- name: probe_drop
DROP TABLE {p}probe
