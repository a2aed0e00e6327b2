-- Accounts an organisation can run (issue 20): disabled users, invitations by email with a
-- role, personal access tokens. Roles live in project_members.role: owner, admin, member,
-- viewer (docs/accounts.md).
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

CREATE TABLE project_invitations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,                    -- lower case
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,             -- SHA-256 of the token (hex); never the token
    invited_by  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    accepted_by INTEGER REFERENCES users(id) ON DELETE SET NULL
);
-- One pending invitation per project and email (a new one replaces it).
CREATE UNIQUE INDEX project_invitations_pending
    ON project_invitations (project_id, email) WHERE accepted_at IS NULL;

CREATE TABLE personal_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL,                   -- read / full
    token_hash   TEXT NOT NULL UNIQUE,            -- SHA-256 of the token (hex); never the token
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX personal_tokens_user ON personal_tokens (user_id);
