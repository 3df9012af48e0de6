-- Statements every SQL backend runs as written; a backend's own file overrides any of them by name.
-- Tables: {queues} {messages} {claims}; {free} is the index of messages no claim holds, by {free_position} (the
-- position; on PostgreSQL, which has no index hints, an expression only that index serves); {free_hint} and
-- {lapsed_hint} pin a scan to it and to the index by claim end where a planner could pick the position index and
-- walk every claimed message at the head of the queue (where a backend has no hints, the lapsed claims' messages
-- are compared by expressions no other index serves, so they are found by claim end); {echo} hides the caller's own messages (:hide, '' for none). Parameters: :name.
-- "The queue" is always (project, name); its id (incarnation) comes from a subquery, so no statement needs a
-- separate look-up first, and a statement on a missing queue simply finds nothing.

-- name: queue_metadata
SELECT metadata FROM {queues} WHERE project = :project AND name = :name

-- name: queue_names
SELECT name, NULL FROM {queues} WHERE project = :project AND name > :after ORDER BY name LIMIT :limit

-- name: queue_names_detailed
SELECT name, metadata FROM {queues} WHERE project = :project AND name > :after ORDER BY name LIMIT :limit

-- name: queue_update
UPDATE {queues} SET metadata = :metadata WHERE project = :project AND name = :name

-- name: queue_insert
INSERT INTO {queues} (project, name, metadata, last_position, last_number)
VALUES (:project, :name, :metadata, 0, 0)

-- name: queue_lock
SELECT id, last_position, last_number, next_due FROM {queues} WHERE project = :project AND name = :name FOR UPDATE

-- name: queue_lock_by_id
SELECT id, last_position, last_number, next_due FROM {queues} WHERE id = :queue_id FOR UPDATE

-- name: queue_drop_messages
DELETE FROM {messages} WHERE queue_id = :queue_id

-- name: queue_drop_claims
DELETE FROM {claims} WHERE queue_id = :queue_id

-- name: queue_drop
DELETE FROM {queues} WHERE id = :queue_id

-- name: queue_advance
UPDATE {queues} SET last_position = :last_position, last_number = :last_number, next_due = :next_due
WHERE id = :queue_id

-- name: queue_state
SELECT id, next_due FROM {queues} WHERE project = :project AND name = :name

-- name: queue_stats
SELECT q.id, q.next_due,
       (SELECT count(*) FROM {messages} WHERE queue_id = q.id AND expires > :now),
       (SELECT count(*) FROM {messages} WHERE queue_id = q.id AND claim_expires > :now),
       (SELECT count(*) FROM {messages} WHERE queue_id = q.id AND position IS NULL AND expires > :now),
       oldest.number, oldest.created, newest.number, newest.created
FROM {queues} q
LEFT JOIN (
    SELECT number, created FROM {messages}
    WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
      AND position > 0 AND expires > :now
    ORDER BY position LIMIT 1
) oldest ON 1 = 1
LEFT JOIN (
    SELECT number, created FROM {messages}
    WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
      AND position > 0 AND expires > :now
    ORDER BY position DESC LIMIT 1
) newest ON 1 = 1
WHERE q.project = :project AND q.name = :name

-- name: message_insert
INSERT INTO {messages} (queue_id, number, position, client, body, created, expires, visible_at)
VALUES (:queue_id, :number, :position, :client, :body, :created, :expires, :visible_at)

-- A page, in one statement (one snapshot): the queue's row (incarnation, NULL, next due time, NULL, NULL, NULL,
-- position counter: a row with no body), then the page's messages (number, body, created, expires, claim_id,
-- claim_expires, position), in no particular order: the caller tells them apart and sorts the messages by
-- position. No derived table holds a body (MariaDB would put it on disk).
-- name: page
(SELECT id, NULL, next_due, NULL, NULL, NULL, last_position
 FROM {queues} WHERE project = :project AND name = :name)
UNION ALL
(SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages}
 WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
   AND position > :after AND (expires + 0) > :now AND {echo}
 ORDER BY position LIMIT :limit)

-- The never-claimed messages of a page, off the {free} index: claimed messages are never walked.
-- name: part_free_page
(SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages} {free_hint}
 WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
   AND claim_expires IS NULL AND {free_position} > :after AND expires > :now AND {echo}
 ORDER BY {free_position} LIMIT :limit)

-- A page without claimed messages. The queue's row carries (fourth column) the earliest end of a claim on its
-- messages: when that is past, a claim has ended without being cleared yet (claims and gc clear them), and the
-- caller reads page_unclaimed_lapsed instead, which adds those messages. The earliest end is one step down the index by claim
-- end whatever the plan: a condition on :now there would let a generic plan scan the whole table for it.
-- name: page_unclaimed
(SELECT q.id, NULL, q.next_due, (SELECT min(claim_expires) FROM {messages} {lapsed_hint} WHERE queue_id = q.id),
        NULL, NULL, q.last_position
 FROM {queues} q WHERE q.project = :project AND q.name = :name)
UNION ALL
{part_free_page}

-- The page above with the messages whose claim has ended but is not yet cleared (few); the caller keeps the
-- first by position.
-- name: page_unclaimed_lapsed
(SELECT id, NULL, next_due, NULL, NULL, NULL, last_position
 FROM {queues} WHERE project = :project AND name = :name)
UNION ALL
{part_free_page}
UNION ALL
(SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages} {lapsed_hint}
 WHERE queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
   AND claim_expires <= :now AND (position + 0) > :after AND (expires + 0) > :now AND {echo}
 ORDER BY (position + 0) LIMIT :limit)

-- name: messages_by_number
SELECT q.id, q.next_due,
       m.number, m.body, m.created, m.expires, m.claim_id, m.claim_expires, m.position
FROM {queues} q
LEFT JOIN {messages} m ON m.queue_id = q.id AND m.number IN (:numbers) AND m.expires > :now
WHERE q.project = :project AND q.name = :name

-- name: message_delete_unclaimed
DELETE FROM {messages}
WHERE queue_id = :incarnation AND number = :number AND expires > :now
  AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
  AND (claim_expires IS NULL OR claim_expires <= :now)

-- name: message_delete_held
DELETE FROM {messages}
WHERE queue_id = :incarnation AND number = :number AND expires > :now
  AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
  AND claim_id = :claim_id AND claim_expires > :now

-- name: message_holder
SELECT claim_id, claim_expires FROM {messages}
WHERE queue_id = :incarnation AND number = :number AND expires > :now
  AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)

-- name: messages_delete_unclaimed
DELETE FROM {messages}
WHERE queue_id = :incarnation AND number IN (:numbers) AND expires > :now
  AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
  AND (claim_expires IS NULL OR claim_expires <= :now)

-- name: messages_delete_held
DELETE FROM {messages}
WHERE queue_id = :incarnation AND number IN (:numbers) AND expires > :now
  AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
  AND claim_id = :claim_id AND claim_expires > :now

-- name: claim_alive
SELECT q.id, c.id FROM {queues} q
LEFT JOIN {claims} c ON c.id = :claim_id AND c.queue_id = q.id AND c.expires > :now
WHERE q.project = :project AND q.name = :name

-- name: claim_read
SELECT q.id, q.next_due, c.ttl, c.created, c.expires,
       m.number, m.body, m.created, m.expires, m.claim_id, m.claim_expires, m.position
FROM {queues} q
LEFT JOIN {claims} c ON c.id = :claim_id AND c.queue_id = q.id AND c.expires > :now
LEFT JOIN {messages} m ON m.claim_id = c.id AND m.queue_id = q.id AND m.claim_expires > :now AND m.expires > :now
WHERE q.project = :project AND q.name = :name

-- The state a claim or pop starts from, under the queue row's lock: is a promotion due, is a lapsed claim to
-- be cleared first?
-- name: queue_turn
SELECT q.id, q.last_position, q.last_number, q.next_due,
       EXISTS (SELECT 1 FROM {messages} WHERE queue_id = q.id AND claim_expires <= :now)
FROM {queues} q WHERE q.project = :project AND q.name = :name FOR UPDATE

-- Messages whose claim has ended become eligible again: cleared lazily by the next claim or pop, and by gc.
-- name: lapsed_claims_clear
UPDATE {messages} SET claim_id = NULL, claim_expires = NULL
WHERE queue_id = :queue_id AND claim_expires <= :now

-- name: eligible_lock
SELECT number, body, created, expires, claim_id, claim_expires, position FROM {messages} {free_hint}
WHERE queue_id = :queue_id AND claim_expires IS NULL AND {free_position} > 0 AND expires > :now
ORDER BY {free_position} LIMIT :limit FOR UPDATE

-- name: messages_take
UPDATE {messages} SET claim_id = :claim_id, claim_expires = :expires,
       expires = CASE WHEN expires < :floor THEN :floor ELSE expires END
WHERE queue_id = :queue_id AND number IN (:numbers)

-- name: messages_remove
DELETE FROM {messages} WHERE queue_id = :queue_id AND number IN (:numbers)

-- name: claim_insert
INSERT INTO {claims} (id, queue_id, ttl, created, expires) VALUES (:claim_id, :queue_id, :ttl, :now, :expires)

-- name: claim_renew
UPDATE {claims} SET ttl = :ttl, expires = :expires
WHERE id = :claim_id AND expires > :now
  AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)

-- name: claim_extend
UPDATE {messages} SET claim_expires = :expires,
       expires = CASE WHEN expires < :floor THEN :floor ELSE expires END
WHERE claim_id = :claim_id AND claim_expires > :now AND expires > :now

-- name: claim_remove
DELETE FROM {claims}
WHERE id = :claim_id AND queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)

-- name: claim_release
UPDATE {messages} SET claim_id = NULL, claim_expires = NULL WHERE claim_id = :claim_id

-- Promotion of due delayed messages, under the queue row's lock.
-- name: due_messages
SELECT number FROM {messages}
WHERE queue_id = :queue_id AND position IS NULL AND expires > :now AND visible_at <= :now
ORDER BY visible_at, number

-- name: message_place
UPDATE {messages} SET position = :position WHERE queue_id = :queue_id AND number = :number

-- name: next_due
SELECT min(visible_at) FROM {messages}
WHERE queue_id = :queue_id AND position IS NULL AND expires > :now AND visible_at > :now

-- name: queue_promoted
UPDATE {queues} SET last_position = :last_position, next_due = :next_due WHERE id = :queue_id

-- gc
-- name: due_queues
SELECT id FROM {queues} WHERE next_due <= :now

-- name: lapsed_claim_ids
SELECT id FROM {claims} WHERE expires <= :now ORDER BY expires LIMIT :limit

-- name: lapsed_messages_clear
UPDATE {messages} SET claim_id = NULL, claim_expires = NULL WHERE claim_id IN (:claim_ids) AND claim_expires <= :now

-- name: claims_remove
DELETE FROM {claims} WHERE id IN (:claim_ids) AND expires <= :now

-- name: expired_messages
SELECT queue_id, number FROM {messages} WHERE expires <= :now ORDER BY expires LIMIT :limit

-- name: expired_remove
DELETE FROM {messages} WHERE queue_id = :queue_id AND number IN (:numbers) AND expires <= :now
