-- Per user × device usage (issue 16): who (a user, a tunnel API key, a share link, or nobody)
-- used which tunnel, per hour. One row per tunnel, hour and principal: nodes add to it with
-- an upsert, so the table grows with active (tunnel, principal) pairs, not with requests.
CREATE TABLE traffic_principal_usage (
    reverse_tunnel_id INTEGER NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    bucket_start      TEXT NOT NULL,               -- the hour
    principal_kind    TEXT NOT NULL,               -- user | key | share | anonymous
    principal_id      INTEGER NOT NULL,            -- users.id, tunnel_keys.id, share_links.id; 0
    requests          INTEGER NOT NULL,
    errors            INTEGER NOT NULL,            -- 4xx and 5xx
    bytes_in          INTEGER NOT NULL,
    bytes_out         INTEGER NOT NULL,
    PRIMARY KEY (reverse_tunnel_id, bucket_start, principal_kind, principal_id)
);
CREATE INDEX traffic_principal_usage_age ON traffic_principal_usage (bucket_start);
