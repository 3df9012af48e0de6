-- The raw floor on MariaDB/MySQL (PyMySQL): single statements on an autocommit connection, transactions on a
-- second connection (autocommit off, so no BEGIN is sent). Claims and pops take turns on the queue row, as the
-- driver's do (SKIP LOCKED there can hand out younger messages first). {p} is the run's table prefix.

-- name: create_queue
INSERT IGNORE INTO {p}queues (project, name, metadata) VALUES (%(project)s, %(queue)s, '{}')

-- name: queue_id
SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s

-- name: drop_messages
DELETE FROM {p}messages WHERE queue_id = %(queue_id)s

-- name: drop_claims
DELETE FROM {p}claims WHERE queue_id = %(queue_id)s

-- name: drop_queue
DELETE FROM {p}queues WHERE id = %(queue_id)s

-- Post, in one transaction: lock the queue row by advancing its counters, read them, one multi-row INSERT.
-- name: advance
UPDATE {p}queues SET last_position = last_position + %(n)s, last_number = last_number + %(n)s
WHERE project = %(project)s AND name = %(queue)s

-- name: counters
SELECT id, last_position, last_number FROM {p}queues WHERE project = %(project)s AND name = %(queue)s

-- name: insert
INSERT INTO {p}messages (queue_id, number, position, client, body, created, expires, visible_at) VALUES

-- name: insert_row
(%s, %s, %s, %s, %s, %s, %s, %s)

-- A page: the queue's incarnation and position counter (kind 0), then the page (kind 1), in one read view.
-- Parenthesised, not a derived table: MariaDB would materialise a derived table with a TEXT column on disk.
-- name: page
(SELECT 0, id, last_position, NULL FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
UNION ALL
(SELECT 1, number, position, body FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > %(after)s AND expires > %(now)s
    ORDER BY position LIMIT %(limit)s)

-- name: unclaimed_page
(SELECT 0, id, last_position, NULL FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
UNION ALL
(SELECT 1, number, position, body FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > %(after)s AND expires > %(now)s
      AND (claim_expires IS NULL OR claim_expires <= %(now)s)
    ORDER BY position LIMIT %(limit)s)

-- Claim and pop: the queue row and the oldest eligible rows locked in one statement, in position order.
-- name: lock_eligible
SELECT q.id, m.number, m.position, m.body
FROM {p}queues q JOIN {p}messages m FORCE INDEX ({p}messages_position) ON m.queue_id = q.id
WHERE q.project = %(project)s AND q.name = %(queue)s
  AND m.position > 0 AND m.expires > %(now)s AND (m.claim_expires IS NULL OR m.claim_expires <= %(now)s)
ORDER BY m.position LIMIT %(limit)s
FOR UPDATE

-- name: mark_claimed
UPDATE {p}messages SET claim_id = %(claim)s, claim_expires = %(expires)s, expires = GREATEST(expires, %(floor)s)
WHERE queue_id = %(queue_id)s AND number IN ({numbers})

-- name: record_claim
INSERT INTO {p}claims (id, queue_id, ttl, created, expires) VALUES (%(claim)s, %(queue_id)s, %(ttl)s, %(now)s, %(expires)s)

-- name: remove
DELETE FROM {p}messages WHERE queue_id = %(queue_id)s AND number IN ({numbers})

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
