-- PostgreSQL: each hot write is one statement, atomic by itself, sent in autocommit: one round trip.
-- Locking reads see the statement's snapshot, so claims run side by side with SKIP LOCKED.

-- A post in one statement: lock and advance the queue's counters (the row lock is held until commit, so
-- positions follow commit order), and insert the batch numbered from them. Nothing happens, and no row comes
-- back, when the queue is missing or a delayed message is due (the caller then promotes it first).
-- name: post
WITH queue AS (
    UPDATE {queues}
    SET last_position = last_position + :visible, last_number = last_number + :count,
        next_due = CASE WHEN CAST(:first_due AS DOUBLE PRECISION) IS NULL THEN next_due
                        WHEN next_due IS NULL OR next_due > :first_due THEN :first_due ELSE next_due END
    WHERE project = :project AND name = :name AND (next_due IS NULL OR next_due > :now)
    RETURNING id, last_position, last_number
), batch AS (
    INSERT INTO {messages} (queue_id, number, position, client, body, created, expires, visible_at)
    SELECT queue.id, queue.last_number - :count + b.ordinal, queue.last_position - :visible + b.rank,
           :client, b.body, :now, b.expires, b.visible_at
    FROM queue, unnest(CAST(:ordinals AS BIGINT[]), CAST(:ranks AS BIGINT[]), CAST(:bodies AS TEXT[]),
                       CAST(:expirations AS DOUBLE PRECISION[]), CAST(:visible_ats AS DOUBLE PRECISION[]))
                AS b (ordinal, rank, body, expires, visible_at)
)
SELECT id, last_number FROM queue

-- Claims and pops, one statement each: the oldest eligible messages, taken past those other claims hold right
-- now (SKIP LOCKED), off the index of messages no claim holds. It takes nothing, and says why, when a claim has
-- lapsed in the queue (its messages must first be freed: they may be older) or a delayed message is due (it
-- must first take its position); the caller then takes the locking path. The chosen rows are materialised once:
-- a locking subquery joined to the UPDATE could be scanned again for each row and choose more than its limit.
-- name: part_chosen
WITH queue AS (
    SELECT id, next_due, EXISTS (SELECT 1 FROM {messages} WHERE queue_id = q.id AND claim_expires <= :now) AS lapsed
    FROM {queues} q WHERE project = :project AND name = :name
), chosen AS MATERIALIZED (
    SELECT queue_id, number FROM {messages}
    WHERE queue_id = (SELECT id FROM queue WHERE NOT lapsed AND (next_due IS NULL OR next_due > :now))
      AND claim_expires IS NULL AND {free_position} > 0 AND expires > :now
    ORDER BY {free_position} LIMIT :limit FOR UPDATE SKIP LOCKED
)

-- name: claim
{part_chosen}, taken AS (
    UPDATE {messages} m
    SET claim_id = :claim_id, claim_expires = :expires, expires = GREATEST(m.expires, :floor)
    FROM chosen
    WHERE m.queue_id = chosen.queue_id AND m.number = chosen.number
    RETURNING m.number, m.body, m.created, m.expires, m.claim_id, m.claim_expires, m.position
), recorded AS (
    INSERT INTO {claims} (id, queue_id, ttl, created, expires)
    SELECT :claim_id, id, :ttl, :now, :expires FROM queue WHERE EXISTS (SELECT 1 FROM taken)
)
SELECT queue.id, queue.next_due, queue.lapsed, taken.* FROM queue LEFT JOIN taken ON true

-- name: pop
{part_chosen}, taken AS (
    DELETE FROM {messages} m
    USING chosen
    WHERE m.queue_id = chosen.queue_id AND m.number = chosen.number
    RETURNING m.number, m.body, m.created, m.expires, m.claim_id, m.claim_expires, m.position
)
SELECT queue.id, queue.next_due, queue.lapsed, taken.* FROM queue LEFT JOIN taken ON true

-- name: eligible_lock
SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages}
WHERE queue_id = :queue_id AND claim_expires IS NULL AND {free_position} > 0 AND expires > :now
ORDER BY {free_position} LIMIT :limit FOR UPDATE SKIP LOCKED

-- Renewal and release, each one statement: the claim row and its messages change together.
-- name: claim_update
WITH renewed AS (
    UPDATE {claims} SET ttl = :ttl, expires = :expires
    WHERE id = :claim_id AND expires > :now
      AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
    RETURNING id
), extended AS (
    UPDATE {messages} SET claim_expires = :expires, expires = GREATEST(expires, :floor)
    WHERE claim_id IN (SELECT id FROM renewed) AND claim_expires > :now AND expires > :now
)
SELECT (SELECT id FROM {queues} WHERE project = :project AND name = :name), (SELECT count(*) FROM renewed)

-- name: claim_delete
WITH released AS (
    DELETE FROM {claims}
    WHERE id = :claim_id AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
    RETURNING id
)
UPDATE {messages} SET claim_id = NULL, claim_expires = NULL WHERE claim_id IN (SELECT id FROM released)

-- name: expired_messages
SELECT queue_id, number FROM {messages} WHERE expires <= :now ORDER BY expires LIMIT :limit FOR UPDATE SKIP LOCKED
