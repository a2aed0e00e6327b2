-- burrow schema, SQLite flavour.
--
-- Timestamps are TEXT in RFC 3339 UTC ("2025-01-01T12:00:00.123456+00:00", as sqlx writes a
-- chrono DateTime<Utc>): all written by burrow in the same zone and format, so comparing the
-- text compares the instants. JSON columns are TEXT. Booleans are INTEGER 0/1.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,          -- lower case
    password_hash TEXT NOT NULL,                 -- argon2 PHC string
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);

CREATE TABLE projects (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);

CREATE TABLE project_members (
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,                    -- owner / member
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

CREATE TABLE fleet_devices (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    dsn            TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    last_seen_at   TEXT,
    cert_serial    TEXT,
    cert_not_after TEXT,
    revoked_at     TEXT
);
CREATE INDEX fleet_devices_project ON fleet_devices (project_id);

CREATE TABLE enrollments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id  INTEGER NOT NULL REFERENCES fleet_devices(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,             -- hex SHA-256 of the one-time token
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
);
CREATE INDEX enrollments_device ON enrollments (device_id);

-- The seed's table, every column kept (NOT NULL added where burrow always has a value).
CREATE TABLE reverse_tunnels (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   INTEGER NOT NULL REFERENCES fleet_devices(id) ON DELETE CASCADE,

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
    local_port  INTEGER NOT NULL DEFAULT 8080,
    protocol    VARCHAR(10) NOT NULL DEFAULT 'http',

    -- Security
    require_auth     BOOLEAN NOT NULL DEFAULT TRUE,
    allowed_user_ids TEXT,                       -- JSON array of user ids (the seed: JSON)

    -- Metrics
    total_requests   INTEGER NOT NULL DEFAULT 0,
    last_accessed_at TEXT,

    -- Lifecycle
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')),
    updated_at  TEXT,
    expires_at  TEXT
);
CREATE INDEX reverse_tunnels_device ON reverse_tunnels (device_id);
CREATE INDEX reverse_tunnels_expires ON reverse_tunnels (expires_at);

CREATE TABLE broker_tunnels (
    tunnel_id            TEXT PRIMARY KEY,
    tunnel_arn           TEXT NOT NULL,
    project_id           INTEGER REFERENCES projects(id) ON DELETE CASCADE,
    status               TEXT NOT NULL,          -- OPEN / CLOSED
    description          TEXT,
    thing_name           TEXT,
    services             TEXT NOT NULL DEFAULT '[]',  -- JSON array of strings
    tags                 TEXT NOT NULL DEFAULT '[]',  -- JSON array of {key, value}
    max_lifetime_minutes INTEGER NOT NULL,

    source_token_hash             TEXT UNIQUE,   -- NULLs allowed, several
    source_token_nonce            TEXT,
    source_token_used_at          TEXT,
    source_client_token_hash      TEXT,
    source_connected              INTEGER NOT NULL DEFAULT 0,
    source_state_updated_at       TEXT,

    destination_token_hash        TEXT UNIQUE,
    destination_token_nonce       TEXT,
    destination_token_used_at     TEXT,
    destination_client_token_hash TEXT,
    destination_connected         INTEGER NOT NULL DEFAULT 0,
    destination_state_updated_at  TEXT,

    created_at      TEXT NOT NULL,
    last_updated_at TEXT NOT NULL,
    expires_at      TEXT NOT NULL
);
CREATE INDEX broker_tunnels_created ON broker_tunnels (created_at, tunnel_id);
CREATE INDEX broker_tunnels_thing ON broker_tunnels (thing_name);
CREATE INDEX broker_tunnels_project ON broker_tunnels (project_id);
CREATE INDEX broker_tunnels_open_expires ON broker_tunnels (status, expires_at);

CREATE TABLE access_log (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    reverse_tunnel_id INTEGER NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    at                TEXT NOT NULL,
    user_id           INTEGER,                     -- no FK: a log line outlives its user
    method            TEXT NOT NULL,
    path              TEXT NOT NULL,
    status            INTEGER NOT NULL,
    bytes_in          INTEGER NOT NULL,
    bytes_out         INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL
);
CREATE INDEX access_log_tunnel ON access_log (reverse_tunnel_id, id);

CREATE TABLE api_keys (
    access_key_id TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id    INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    nonce         TEXT NOT NULL,                 -- the secret is derived from it
    description   TEXT,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE job_runs (
    name            TEXT PRIMARY KEY,
    last_started_at TEXT NOT NULL
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
