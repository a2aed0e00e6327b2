-- Sharing a tunnel (issue 15): per-tunnel API keys, share links and their visitors, IP rules,
-- and the audit log of every create and revoke.
ALTER TABLE reverse_tunnels ADD COLUMN ip_allow JSONB;  -- JSON array of CIDRs (NULL: none)
ALTER TABLE reverse_tunnels ADD COLUMN ip_deny  JSONB;  -- JSON array of CIDRs (NULL: none)

CREATE TABLE tunnel_keys (
    id                BIGSERIAL PRIMARY KEY,
    reverse_tunnel_id BIGINT NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    prefix            TEXT NOT NULL,              -- the first characters, shown in lists
    key_hash          TEXT NOT NULL UNIQUE,       -- SHA-256 of the key (hex); never the key
    methods           JSONB NOT NULL DEFAULT '[]', -- JSON array; empty: every method
    expires_at        TIMESTAMPTZ,
    created_by        BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    last_used_at      TIMESTAMPTZ,
    revoked_at        TIMESTAMPTZ
);
CREATE INDEX tunnel_keys_tunnel ON tunnel_keys (reverse_tunnel_id);

CREATE TABLE share_links (
    id                BIGSERIAL PRIMARY KEY,
    reverse_tunnel_id BIGINT NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    prefix            TEXT NOT NULL,
    secret_hash       TEXT NOT NULL UNIQUE,       -- SHA-256 of the link's secret (hex)
    note              TEXT,
    methods           JSONB NOT NULL DEFAULT '[]',
    max_uses          BIGINT,                     -- distinct visitors; NULL: no limit
    uses              BIGINT NOT NULL DEFAULT 0,
    expires_at        TIMESTAMPTZ NOT NULL,
    created_by        BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    revoked_at        TIMESTAMPTZ
);
CREATE INDEX share_links_tunnel ON share_links (reverse_tunnel_id);

CREATE TABLE share_link_visitors (
    link_id    BIGINT NOT NULL REFERENCES share_links(id) ON DELETE CASCADE,
    visitor    TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (link_id, visitor)
);

CREATE TABLE sharing_audit (
    id                BIGSERIAL PRIMARY KEY,
    project_id        BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    reverse_tunnel_id BIGINT,                     -- kept after the tunnel is deleted
    actor_user_id     BIGINT,
    actor_email       TEXT,
    action            TEXT NOT NULL,              -- api_key.create, share_link.revoke, ...
    object_id         BIGINT,
    detail            TEXT,
    at                TIMESTAMPTZ NOT NULL
);
CREATE INDEX sharing_audit_project ON sharing_audit (project_id, id);
