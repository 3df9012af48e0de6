-- SQLite: one writer at a time (every write transaction is BEGIN IMMEDIATE), so no statement locks rows
-- (FOR UPDATE is dropped from the common statements) and writes run one after another anyway.

-- name: post_advance
UPDATE {queues}
SET last_position = last_position + :visible, last_number = last_number + :count,
    next_due = CASE WHEN :first_due IS NULL THEN next_due
                    WHEN next_due IS NULL OR next_due > :first_due THEN :first_due ELSE next_due END
WHERE project = :project AND name = :name AND (next_due IS NULL OR next_due > :now)
RETURNING id, last_position, last_number

-- The pages of common.sql, with each ordered part a subquery: SQLite takes no ORDER BY inside a compound SELECT.
-- name: page
SELECT id, NULL, next_due, NULL, NULL, NULL, last_position
FROM {queues} WHERE project = :project AND name = :name
UNION ALL
SELECT * FROM (
    SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages}
    WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
      AND position > :after AND (expires + 0) > :now AND {echo}
    ORDER BY position LIMIT :limit
)

-- name: part_free_page
SELECT * FROM (
    SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages} {free_hint}
    WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
      AND claim_expires IS NULL AND {free_position} > :after AND expires > :now AND {echo}
    ORDER BY {free_position} LIMIT :limit
)

-- name: page_unclaimed
SELECT q.id, NULL, q.next_due, (SELECT min(claim_expires) FROM {messages} {lapsed_hint} WHERE queue_id = q.id),
       NULL, NULL, q.last_position
FROM {queues} q WHERE q.project = :project AND q.name = :name
UNION ALL
{part_free_page}

-- name: page_unclaimed_lapsed
SELECT id, NULL, next_due, NULL, NULL, NULL, last_position
FROM {queues} WHERE project = :project AND name = :name
UNION ALL
{part_free_page}
UNION ALL
SELECT * FROM (
    SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages} {lapsed_hint}
    WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
      AND claim_expires <= :now AND position > :after AND expires > :now AND {echo}
    ORDER BY position LIMIT :limit
)

-- Claims and pops without the queue's bookkeeping: the oldest eligible messages taken in one statement, unless
-- a claim has lapsed in the queue or a delayed message is due (both must be dealt with first, under the lock);
-- it then takes nothing, and so does it on a missing or empty queue: the caller takes the locking path.
-- name: part_eligible
(queue_id, number) IN (
    SELECT queue_id, number FROM {messages} {free_hint}
    WHERE queue_id = (
        SELECT id FROM {queues} q WHERE project = :project AND name = :name AND (next_due IS NULL OR next_due > :now)
          AND NOT EXISTS (SELECT 1 FROM {messages} {lapsed_hint} WHERE queue_id = q.id AND claim_expires <= :now)
    ) AND claim_expires IS NULL AND position > 0 AND expires > :now
    ORDER BY position LIMIT :limit
)

-- name: claim_quick
UPDATE {messages}
SET claim_id = :claim_id, claim_expires = :expires, expires = CASE WHEN expires < :floor THEN :floor ELSE expires END
WHERE {part_eligible}
RETURNING queue_id, number, body, created, expires, claim_id, claim_expires, position

-- name: pop_quick
DELETE FROM {messages} WHERE {part_eligible}
RETURNING queue_id, number, body, created, expires, claim_id, claim_expires, position
