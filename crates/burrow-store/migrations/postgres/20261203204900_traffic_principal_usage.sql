-- Per user × device usage (issue 16): who (a user, a tunnel API key, a share link, or nobody)
-- used which tunnel, per hour. One row per tunnel, hour and principal: nodes add to it with
-- an upsert, so the table grows with active (tunnel, principal) pairs, not with requests.
CREATE TABLE traffic_principal_usage (
    reverse_tunnel_id BIGINT NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    bucket_start      TIMESTAMPTZ NOT NULL,        -- the hour
    principal_kind    TEXT NOT NULL,               -- user | key | share | anonymous
    principal_id      BIGINT NOT NULL,            -- users.id, tunnel_keys.id, share_links.id; 0
    requests          BIGINT NOT NULL,
    errors            BIGINT NOT NULL,            -- 4xx and 5xx
    bytes_in          BIGINT NOT NULL,
    bytes_out         BIGINT NOT NULL,
    PRIMARY KEY (reverse_tunnel_id, bucket_start, principal_kind, principal_id)
);
CREATE INDEX traffic_principal_usage_age ON traffic_principal_usage (bucket_start);
