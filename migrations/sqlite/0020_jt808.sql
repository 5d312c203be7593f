-- liandong embedded store, schema 20: JT/T 808 terminals (the BeiDou terminals in patrol
-- cars). A terminal registered by an administrator as a device (`jt808-<phone digits>`)
-- registers itself over JT/T 808 and is given an authentication code; only the code's
-- hash is kept. A new registration replaces the code.
CREATE TABLE jt808_terminals (
    device_id     TEXT PRIMARY KEY NOT NULL,
    -- the code as kept at rest (`sha256:` and its hex digest), never the code itself
    code_hash     TEXT NOT NULL,
    registered_ms INTEGER NOT NULL,
    -- what the terminal said of itself in its registration (0x0100), for the record
    manufacturer  TEXT NOT NULL,
    model         TEXT NOT NULL,
    terminal_id   TEXT NOT NULL,
    plate         TEXT NOT NULL
) STRICT;
