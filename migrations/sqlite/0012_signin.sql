-- liandong embedded store, schema 13: signing in (issue 15). Passwords, sessions and
-- one-time sign-in codes, each kept only as a hash: a copy of the database signs no
-- one in.

-- A person's password as an argon2id PHC string (algorithm, parameters, salt and hash).
CREATE TABLE passwords (
    person_id  TEXT PRIMARY KEY NOT NULL,
    phc        TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;

-- A signed-in session. The token is 256 random bits, so its SHA-256 (`sha256:` + hex)
-- needs no salt. A session ends at `expires_ms` (its idle lifetime, pushed on by
-- renewal), never after `max_expires_ms`, or when revoked.
CREATE TABLE sessions (
    token_hash     TEXT PRIMARY KEY NOT NULL,
    person_id      TEXT NOT NULL,
    -- the role chosen at sign-in, one of the person's roles then
    role           TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    expires_ms     INTEGER NOT NULL,
    max_expires_ms INTEGER NOT NULL,
    last_used_ms   INTEGER NOT NULL,
    revoked_ms     INTEGER,
    -- `password` or `code`: how the session was opened
    kind           TEXT NOT NULL,
    -- the browser or app that signed in, cut to 200 characters, for "where am I signed in"
    user_agent     TEXT
) STRICT;

-- A person's sessions, for "sign out everywhere" and deactivation.
CREATE INDEX sessions_person ON sessions (person_id, revoked_ms);

-- A one-time sign-in code for a phone: used once, before it expires.
CREATE TABLE sign_in_codes (
    code_hash  TEXT PRIMARY KEY NOT NULL,
    person_id  TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER
) STRICT;
