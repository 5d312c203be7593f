-- Nothing for PostgreSQL: its sequence's head exists since migration 0023 and moves
-- with every commit. SQLite's migration 0024 adds the head there, moved by retention.
-- The number is kept so that both stores' migrations stay numbered alike.
SELECT 1;
