-- The raw floors' statements that every dialect shares; <dialect>.sql adds its own and overrides these by name.
-- {p} is the run's table prefix; {numbers} a list of placeholders; {unclaimed} / {holder} the claim conditions
-- the code puts in (see SQLFloor.statement). Each statement is named by the comment line above it.

-- name: queue_id
SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s

-- name: drop_messages
DELETE FROM {p}messages WHERE queue_id = %(queue_id)s

-- name: drop_claims
DELETE FROM {p}claims WHERE queue_id = %(queue_id)s

-- name: drop_queue
DELETE FROM {p}queues WHERE id = %(queue_id)s

-- A post's multi-row INSERT: the statement, then one row per message.
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
      AND position > %(after)s AND (expires + 0) > %(now)s {unclaimed}
    ORDER BY position LIMIT %(limit)s
) page

-- A delete: one DELETE checking the queue and the claim ({holder}) in its WHERE clause.
-- name: delete
DELETE FROM {p}messages
WHERE queue_id = %(queue_id)s AND number = %(number)s AND expires > %(now)s {holder}
  AND queue_id IN (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)

-- name: bulk_delete
DELETE FROM {p}messages
WHERE queue_id = %(queue_id)s AND number IN ({numbers}) AND expires > %(now)s {holder}
  AND queue_id IN (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)

-- Filling a deep queue (not measured).
-- name: fill_row
INSERT INTO {p}messages (queue_id, number, position, client, body, created, expires, visible_at, claim_id,
                         claim_expires)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)

-- name: fill_claim
INSERT INTO {p}claims (id, queue_id, ttl, created, expires) VALUES (%s, %s, %s, %s, %s)

-- What one commit costs here (reported with the durability settings): single-row inserts, each its own commit.
-- name: probe_create
CREATE TABLE {p}probe (x INTEGER)

-- name: probe_insert
INSERT INTO {p}probe (x) VALUES (1)

-- name: probe_drop
DROP TABLE {p}probe
