-- MariaDB / MySQL (InnoDB). A locking read sees the latest committed rows, not a snapshot: a claim scanning
-- past a post's uncommitted rows could take younger messages first. So claims and pops take turns with posts
-- on the queue row (queue_turn, queue_lock) and hold it only for a few short statements; reads and deletes
-- run side by side. Scans of eligible messages are pinned to the {free} index, so claimed rows are never walked.

-- name: expired_messages
SELECT queue_id, number FROM {messages} FORCE INDEX ({prefix}messages_expires)
WHERE expires <= :now ORDER BY expires LIMIT :limit

-- A claim's or pop's turn and its messages in one statement: the queue row locked with the oldest messages no
-- claim holds (off the {free} index, in position order). Whether a promotion is due or a lapsed claim is to be
-- cleared first comes with it; the caller then locks the eligible messages again (eligible_lock).
-- name: queue_take
SELECT q.id, q.last_position, q.last_number, q.next_due,
       EXISTS (SELECT 1 FROM {messages} WHERE queue_id = q.id AND claim_expires <= :now),
       m.number, m.body, m.created, m.expires, m.claim_id, m.claim_expires, m.position
FROM {queues} q
LEFT JOIN {messages} m {free_hint}
       ON m.queue_id = q.id AND m.claim_expires IS NULL AND m.position > 0 AND m.expires > :now
WHERE q.project = :project AND q.name = :name
ORDER BY m.position LIMIT :limit
FOR UPDATE
