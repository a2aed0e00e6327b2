-- Custom domains with automatic certificates (issue 17, docs/custom-domains.md).
CREATE TABLE custom_domains (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    reverse_tunnel_id  INTEGER NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    hostname           TEXT NOT NULL UNIQUE,      -- lower-case ASCII (IDN as punycode)
    verification_value TEXT NOT NULL,             -- the TXT value to publish (public)
    status             TEXT NOT NULL,             -- pending_verification/verified/issuing/active/failed
    status_reason      TEXT,
    verified_at        TEXT,                      -- ownership proven; NULL: not served
    checked_at         TEXT,
    next_check_at      TEXT NOT NULL,             -- also a lease: a node claims a due check
    failures           INTEGER NOT NULL DEFAULT 0,-- consecutive, for backoff
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX custom_domains_tunnel ON custom_domains (reverse_tunnel_id);
CREATE INDEX custom_domains_due ON custom_domains (next_check_at);

-- Certificates burrow obtained by ACME: a custom hostname's, or `*.<base_domain>`.
CREATE TABLE certificates (
    name       TEXT PRIMARY KEY,
    chain_pem  TEXT NOT NULL,
    key_sealed TEXT NOT NULL,                     -- the private key, sealed with the server's key
    not_before TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Pending ACME challenge answers, so that whichever node the CA reaches can answer.
CREATE TABLE acme_challenges (
    key        TEXT PRIMARY KEY,                  -- "http-01:<token>" / "tls-alpn-01:<domain>"
    value      TEXT NOT NULL,                     -- the key authorization
    expires_at TEXT NOT NULL
);
