-- Traffic analytics: the access log learns who asked, per-tunnel rollups per minute and per
-- hour (several rows per bucket may exist: readers add them up), and indexes for pruning.
ALTER TABLE access_log ADD COLUMN client_ip TEXT;
ALTER TABLE access_log ADD COLUMN user_agent TEXT;
CREATE INDEX access_log_at ON access_log (at);

CREATE TABLE traffic_rollups (
    id                BIGSERIAL PRIMARY KEY,
    reverse_tunnel_id BIGINT NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    resolution_secs   BIGINT NOT NULL,            -- 60 or 3600
    bucket_start      TIMESTAMPTZ NOT NULL,
    requests          BIGINT NOT NULL,
    status_1xx        BIGINT NOT NULL,
    status_2xx        BIGINT NOT NULL,
    status_3xx        BIGINT NOT NULL,
    status_4xx        BIGINT NOT NULL,
    status_5xx        BIGINT NOT NULL,
    bytes_in          BIGINT NOT NULL,
    bytes_out         BIGINT NOT NULL,
    distinct_clients  BIGINT NOT NULL,
    latency           JSONB NOT NULL              -- {edge, tunnel, device}: bucket counts
);
CREATE INDEX traffic_rollups_series ON traffic_rollups (reverse_tunnel_id, resolution_secs, bucket_start);
CREATE INDEX traffic_rollups_age ON traffic_rollups (resolution_secs, bucket_start);
