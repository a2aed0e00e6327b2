-- Accounts an organisation can run (issue 20): disabled users, invitations by email with a
-- role, personal access tokens. Roles live in project_members.role: owner, admin, member,
-- viewer (docs/accounts.md).
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE project_invitations (
    id          BIGSERIAL PRIMARY KEY,
    project_id  BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,                    -- lower case
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,             -- SHA-256 of the token (hex); never the token
    invited_by  BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    accepted_by BIGINT REFERENCES users(id) ON DELETE SET NULL
);
-- One pending invitation per project and email (a new one replaces it).
CREATE UNIQUE INDEX project_invitations_pending
    ON project_invitations (project_id, email) WHERE accepted_at IS NULL;

CREATE TABLE personal_tokens (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL,                   -- read / full
    token_hash   TEXT NOT NULL UNIQUE,            -- SHA-256 of the token (hex); never the token
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX personal_tokens_user ON personal_tokens (user_id);
