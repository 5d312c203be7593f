-- The sequence's head on SQLite: the highest number given out, kept where retention
-- cannot take it away (issue 18). A running server numbers from the highest number it
-- committed itself, but one that starts reads it from the store, and a `MAX(seq)` over the
-- tables falls when retention has removed the rows that held the highest numbers (a
-- camera's events older than the retention window with none newer): the numbers would be
-- given out again, and a screen that saw the old ones and reconnects with `since` would
-- miss the new ones. Retention moves the head up to the table's highest number in the
-- transaction that deletes its rows; group commits do not write it (it would be one more
-- page in every commit), so the highest number is the greater of the head and the
-- tables' `MAX` (`max_seq_sql`). PostgreSQL keeps its head since migration 0023 and moves
-- it with every commit; its migration 0024 is empty.

CREATE TABLE seq_head (
    one INTEGER PRIMARY KEY NOT NULL CHECK (one = 1),
    seq INTEGER NOT NULL CHECK (seq >= 0)
) STRICT;

INSERT INTO seq_head (one, seq) VALUES (1, 0);
