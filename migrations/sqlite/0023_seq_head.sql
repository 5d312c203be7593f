-- Nothing for SQLite. PostgreSQL's migration 0023 keeps the sequence's head in a row of
-- its own, because MAX(seq) over a year of monthly partitions locks every month's index
-- at every group commit; SQLite has no partitions, and its MAX(seq) is one descent of
-- each table's primary key. The number is kept so that both stores' migrations stay
-- numbered alike.
SELECT 1;
