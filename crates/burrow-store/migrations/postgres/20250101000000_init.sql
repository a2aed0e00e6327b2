-- burrow schema, PostgreSQL flavour. Timestamps are TIMESTAMPTZ (burrow writes them truncated
-- to microseconds), ids BIGSERIAL/BIGINT, JSON columns JSONB.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,          -- lower case
    password_hash TEXT NOT NULL,                 -- argon2 PHC string
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE projects (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE project_members (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,                    -- owner / member
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

CREATE TABLE fleet_devices (
    id             BIGSERIAL PRIMARY KEY,
    project_id     BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    dsn            TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    last_seen_at   TIMESTAMPTZ,
    cert_serial    TEXT,
    cert_not_after TIMESTAMPTZ,
    revoked_at     TIMESTAMPTZ
);
CREATE INDEX fleet_devices_project ON fleet_devices (project_id);

CREATE TABLE enrollments (
    id         BIGSERIAL PRIMARY KEY,
    device_id  BIGINT NOT NULL REFERENCES fleet_devices(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,             -- hex SHA-256 of the one-time token
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX enrollments_device ON enrollments (device_id);

-- The seed's table, every column kept (NOT NULL added where burrow always has a value;
-- integers widened to BIGINT).
CREATE TABLE reverse_tunnels (
    id          BIGSERIAL PRIMARY KEY,
    device_id   BIGINT NOT NULL REFERENCES fleet_devices(id) ON DELETE CASCADE,

    -- Configuration
    name        VARCHAR(255) NOT NULL,
    description TEXT,
    public_url  VARCHAR(500) UNIQUE NOT NULL,    -- host name, lower case
    is_enabled  BOOLEAN NOT NULL DEFAULT TRUE,

    -- Broker tunnel (the seed's AWS IoT Secure Tunnel)
    tunnel_id   VARCHAR(255),
    tunnel_arn  VARCHAR(500),
    source_access_token      TEXT,               -- kept for compatibility; burrow leaves NULL
    destination_access_token TEXT,               -- kept for compatibility; burrow leaves NULL

    -- Target service
    local_port  BIGINT NOT NULL DEFAULT 8080,
    protocol    VARCHAR(10) NOT NULL DEFAULT 'http',

    -- Security
    require_auth     BOOLEAN NOT NULL DEFAULT TRUE,
    allowed_user_ids JSONB,                      -- JSON array of user ids

    -- Metrics
    total_requests   BIGINT NOT NULL DEFAULT 0,
    last_accessed_at TIMESTAMPTZ,

    -- Lifecycle
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at  TIMESTAMPTZ,
    expires_at  TIMESTAMPTZ
);
CREATE INDEX reverse_tunnels_device ON reverse_tunnels (device_id);
CREATE INDEX reverse_tunnels_expires ON reverse_tunnels (expires_at);

CREATE TABLE broker_tunnels (
    tunnel_id            TEXT PRIMARY KEY,
    tunnel_arn           TEXT NOT NULL,
    project_id           BIGINT REFERENCES projects(id) ON DELETE CASCADE,
    status               TEXT NOT NULL,          -- OPEN / CLOSED
    description          TEXT,
    thing_name           TEXT,
    services             JSONB NOT NULL DEFAULT '[]',  -- array of strings
    tags                 JSONB NOT NULL DEFAULT '[]',  -- array of {key, value}
    max_lifetime_minutes BIGINT NOT NULL,

    source_token_hash             TEXT UNIQUE,   -- NULLs allowed, several
    source_token_nonce            TEXT,
    source_token_used_at          TIMESTAMPTZ,
    source_client_token_hash      TEXT,
    source_connected              BOOLEAN NOT NULL DEFAULT FALSE,
    source_state_updated_at       TIMESTAMPTZ,

    destination_token_hash        TEXT UNIQUE,
    destination_token_nonce       TEXT,
    destination_token_used_at     TIMESTAMPTZ,
    destination_client_token_hash TEXT,
    destination_connected         BOOLEAN NOT NULL DEFAULT FALSE,
    destination_state_updated_at  TIMESTAMPTZ,

    created_at      TIMESTAMPTZ NOT NULL,
    last_updated_at TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX broker_tunnels_created ON broker_tunnels (created_at, tunnel_id);
CREATE INDEX broker_tunnels_thing ON broker_tunnels (thing_name);
CREATE INDEX broker_tunnels_project ON broker_tunnels (project_id);
CREATE INDEX broker_tunnels_open_expires ON broker_tunnels (status, expires_at);

CREATE TABLE access_log (
    id                BIGSERIAL PRIMARY KEY,
    reverse_tunnel_id BIGINT NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    at                TIMESTAMPTZ NOT NULL,
    user_id           BIGINT,                      -- no FK: a log line outlives its user
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    status            BIGINT NOT NULL,
    bytes_in          BIGINT NOT NULL,
    bytes_out         BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL
);
CREATE INDEX access_log_tunnel ON access_log (reverse_tunnel_id, id);

CREATE TABLE api_keys (
    access_key_id TEXT PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id    BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    nonce         TEXT NOT NULL,                 -- the secret is derived from it
    description   TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE job_runs (
    name            TEXT PRIMARY KEY,
    last_started_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
