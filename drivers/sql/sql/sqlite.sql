-- SQLite: one writer at a time (every write transaction is BEGIN IMMEDIATE), so no statement locks rows
-- (FOR UPDATE is dropped from the common statements) and writes run one after another anyway.

-- name: post_advance
UPDATE {queues}
SET last_position = last_position + :visible, last_number = last_number + :count,
    next_due = CASE WHEN :first_due IS NULL THEN next_due
                    WHEN next_due IS NULL OR next_due > :first_due THEN :first_due ELSE next_due END
WHERE project = :project AND name = :name AND (next_due IS NULL OR next_due > :now)
RETURNING id, last_position, last_number
