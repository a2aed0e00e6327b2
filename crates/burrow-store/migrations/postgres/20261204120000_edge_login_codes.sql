-- One-time edge login codes (issue 14): in the database so that a browser may finish the
-- tunnel login on any node of a cluster, not only on the node that minted its code.
CREATE TABLE edge_login_codes (
    code_hash  TEXT PRIMARY KEY,                 -- SHA-256 of the code (hex); never the code
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    host       TEXT NOT NULL,                    -- the tunnel host it may be redeemed on
    state_hash TEXT NOT NULL,                    -- SHA-256 of the browser's login state (hex)
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX edge_login_codes_user ON edge_login_codes (user_id, created_at);
CREATE INDEX edge_login_codes_expiry ON edge_login_codes (expires_at);
