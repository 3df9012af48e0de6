-- MariaDB / MySQL (InnoDB). A locking read sees the latest committed rows, not a snapshot: a claim scanning
-- past a post's uncommitted rows could take younger messages first. So claims and pops take turns with posts
-- on the queue row (queue_turn, queue_lock) and hold it only for a few short statements; reads and deletes
-- run side by side. Scans of eligible messages are pinned to the {free} index, so claimed rows are never walked.

-- name: expired_messages
SELECT queue_id, number FROM {messages} FORCE INDEX ({prefix}messages_expires)
WHERE expires <= :now ORDER BY expires LIMIT :limit

-- A claim's or pop's turn and its messages in one statement: first the queue row, locked (whether a promotion
-- is due or a lapsed claim is to be cleared comes with it; the caller then locks the eligible messages again,
-- eligible_lock), then, read once the turn is taken, the oldest messages no claim holds, locked, off the {free}
-- index in position order. A UNION, not a join: a join sorts every eligible message to find the first few.
-- name: queue_take
(SELECT q.id, q.last_position, q.last_number, q.next_due,
        EXISTS (SELECT 1 FROM {messages} WHERE queue_id = q.id AND claim_expires <= :now),
        NULL, NULL, NULL, NULL, NULL, NULL, NULL
 FROM {queues} q WHERE q.project = :project AND q.name = :name FOR UPDATE)
UNION ALL
(SELECT NULL, NULL, NULL, NULL, NULL,
        m.number, m.body, m.created, m.expires, m.claim_id, m.claim_expires, m.position
 FROM {messages} m {free_hint}
 WHERE m.queue_id = (SELECT id FROM {queues} WHERE project = :project AND name = :name)
   AND m.claim_expires IS NULL AND m.position > 0 AND m.expires > :now
 ORDER BY m.position LIMIT :limit FOR UPDATE)
