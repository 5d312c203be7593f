-- liandong production store, schema 20: JT/T 808 terminals
-- (mirrors migrations/sqlite/0020_jt808.sql).
CREATE TABLE jt808_terminals (
    device_id     text COLLATE "C" PRIMARY KEY,
    -- the code as kept at rest (`sha256:` and its hex digest), never the code itself
    code_hash     text NOT NULL,
    registered_ms bigint NOT NULL,
    -- what the terminal said of itself in its registration (0x0100), for the record
    manufacturer  text NOT NULL,
    model         text NOT NULL,
    terminal_id   text NOT NULL,
    plate         text NOT NULL
);
