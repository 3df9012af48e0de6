-- The raw floor on SQLite (the sqlite3 module, autocommit; BEGIN IMMEDIATE where a write takes two statements).
-- %(name)s placeholders become :name, %s becomes ?.

-- name: create_queue
INSERT OR IGNORE INTO {p}queues (project, name, metadata) VALUES (%(project)s, %(queue)s, '{}')

-- Post, in one write transaction: advance the queue's counters, then one multi-row INSERT.
-- name: advance
UPDATE {p}queues SET last_position = last_position + %(n)s, last_number = last_number + %(n)s
WHERE project = %(project)s AND name = %(queue)s
RETURNING id, last_position, last_number

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

-- After a bulk fill, so the planner knows the queue is deep, as it would after the PRAGMA optimize SQLite advises
-- applications to run now and then (the driver's unclaimed deep pages are as slow without these statistics).
-- name: analyze
ANALYZE {p}messages
