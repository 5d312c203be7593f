-- liandong production store, schema 13: signing in (issue 15). Passwords, sessions and
-- one-time sign-in codes, each kept only as a hash (mirrors
-- migrations/sqlite/0012_signin.sql).

-- A person's password as an argon2id PHC string (algorithm, parameters, salt and hash).
CREATE TABLE passwords (
    person_id  text COLLATE "C" PRIMARY KEY,
    phc        text NOT NULL,
    updated_ms bigint NOT NULL
);

-- A signed-in session. The token is 256 random bits, so its SHA-256 (`sha256:` + hex)
-- needs no salt. A session ends at `expires_ms` (its idle lifetime, pushed on by
-- renewal), never after `max_expires_ms`, or when revoked.
CREATE TABLE sessions (
    token_hash     text COLLATE "C" PRIMARY KEY,
    person_id      text NOT NULL,
    -- the role chosen at sign-in, one of the person's roles then
    role           text NOT NULL,
    created_ms     bigint NOT NULL,
    expires_ms     bigint NOT NULL,
    max_expires_ms bigint NOT NULL,
    last_used_ms   bigint NOT NULL,
    revoked_ms     bigint,
    -- `password` or `code`: how the session was opened
    kind           text NOT NULL,
    -- the browser or app that signed in, cut to 200 characters, for "where am I signed in"
    user_agent     text
);

-- A person's sessions, for "sign out everywhere" and deactivation.
CREATE INDEX sessions_person ON sessions (person_id, revoked_ms);

-- A one-time sign-in code for a phone: used once, before it expires.
CREATE TABLE sign_in_codes (
    code_hash  text COLLATE "C" PRIMARY KEY,
    person_id  text NOT NULL,
    created_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    used_ms    bigint
);
