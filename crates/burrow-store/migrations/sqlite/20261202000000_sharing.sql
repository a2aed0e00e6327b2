-- Sharing a tunnel (issue 15): per-tunnel API keys, share links and their visitors, IP rules,
-- and the audit log of every create and revoke.
ALTER TABLE reverse_tunnels ADD COLUMN ip_allow TEXT;  -- JSON array of CIDRs (NULL: none)
ALTER TABLE reverse_tunnels ADD COLUMN ip_deny  TEXT;  -- JSON array of CIDRs (NULL: none)

CREATE TABLE tunnel_keys (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    reverse_tunnel_id INTEGER NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    prefix            TEXT NOT NULL,              -- the first characters, shown in lists
    key_hash          TEXT NOT NULL UNIQUE,       -- SHA-256 of the key (hex); never the key
    methods           TEXT NOT NULL DEFAULT '[]', -- JSON array; empty: every method
    expires_at        TEXT,
    created_by        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    last_used_at      TEXT,
    revoked_at        TEXT
);
CREATE INDEX tunnel_keys_tunnel ON tunnel_keys (reverse_tunnel_id);

CREATE TABLE share_links (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    reverse_tunnel_id INTEGER NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    prefix            TEXT NOT NULL,
    secret_hash       TEXT NOT NULL UNIQUE,       -- SHA-256 of the link's secret (hex)
    note              TEXT,
    methods           TEXT NOT NULL DEFAULT '[]',
    max_uses          INTEGER,                     -- distinct visitors; NULL: no limit
    uses              INTEGER NOT NULL DEFAULT 0,
    expires_at        TEXT NOT NULL,
    created_by        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at        TEXT NOT NULL,
    revoked_at        TEXT
);
CREATE INDEX share_links_tunnel ON share_links (reverse_tunnel_id);

CREATE TABLE share_link_visitors (
    link_id    INTEGER NOT NULL REFERENCES share_links(id) ON DELETE CASCADE,
    visitor    TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (link_id, visitor)
);

CREATE TABLE sharing_audit (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id        INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    reverse_tunnel_id INTEGER,                     -- kept after the tunnel is deleted
    actor_user_id     INTEGER,
    actor_email       TEXT,
    action            TEXT NOT NULL,              -- api_key.create, share_link.revoke, ...
    object_id         INTEGER,
    detail            TEXT,
    at                TEXT NOT NULL
);
CREATE INDEX sharing_audit_project ON sharing_audit (project_id, id);
