-- The raw floor on MariaDB/MySQL (PyMySQL): single statements on an autocommit connection, transactions on a
-- second connection (autocommit off, so no BEGIN is sent). Claims and pops take turns on the queue row, as the
-- driver's do (SKIP LOCKED there can hand out younger messages first).

-- name: create_queue
INSERT IGNORE INTO {p}queues (project, name, metadata) VALUES (%(project)s, %(queue)s, '{}')

-- Post, in one transaction: lock the queue row by advancing its counters, read them, one multi-row INSERT.
-- name: advance
UPDATE {p}queues SET last_position = last_position + %(n)s, last_number = last_number + %(n)s
WHERE project = %(project)s AND name = %(queue)s

-- name: counters
SELECT id, last_position, last_number FROM {p}queues WHERE project = %(project)s AND name = %(queue)s

-- A page, parenthesised rather than a derived table: MariaDB materialises a derived table with a TEXT column on
-- disk.
-- name: page
(SELECT 0, id, last_position, NULL FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
UNION ALL
(SELECT 1, number, position, body FROM {p}messages
    WHERE queue_id = (SELECT id FROM {p}queues WHERE project = %(project)s AND name = %(queue)s)
      AND position > %(after)s AND expires > %(now)s {unclaimed}
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

-- After a bulk fill, so the planner knows the queue is deep (as InnoDB's automatic statistics would for a queue
-- filled by posts).
-- name: analyze
ANALYZE TABLE {p}messages
