-- MariaDB / MySQL (InnoDB). A locking read sees the latest committed rows, not a snapshot: a claim scanning
-- past a post's uncommitted rows could take younger messages first. So claims and pops take turns with posts
-- on the queue row (queue_turn, queue_lock) and hold it only for a few short statements; reads and deletes
-- run side by side. Scans of eligible messages are pinned to the {free} index, so claimed rows are never walked.

-- name: expired_messages
SELECT queue_id, number FROM {messages} FORCE INDEX ({prefix}messages_expires)
WHERE expires <= :now ORDER BY expires LIMIT :limit
