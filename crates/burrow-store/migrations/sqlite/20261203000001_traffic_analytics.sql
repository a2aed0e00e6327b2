-- Traffic analytics: the access log learns who asked, per-tunnel rollups per minute and per
-- hour (several rows per bucket may exist: readers add them up), and indexes for pruning.
ALTER TABLE access_log ADD COLUMN client_ip TEXT;
ALTER TABLE access_log ADD COLUMN user_agent TEXT;
CREATE INDEX access_log_at ON access_log (at);

CREATE TABLE traffic_rollups (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    reverse_tunnel_id INTEGER NOT NULL REFERENCES reverse_tunnels(id) ON DELETE CASCADE,
    resolution_secs   INTEGER NOT NULL,            -- 60 or 3600
    bucket_start      TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    status_1xx        INTEGER NOT NULL,
    status_2xx        INTEGER NOT NULL,
    status_3xx        INTEGER NOT NULL,
    status_4xx        INTEGER NOT NULL,
    status_5xx        INTEGER NOT NULL,
    bytes_in          INTEGER NOT NULL,
    bytes_out         INTEGER NOT NULL,
    distinct_clients  INTEGER NOT NULL,
    latency           TEXT NOT NULL              -- {edge, tunnel, device}: bucket counts
);
CREATE INDEX traffic_rollups_series ON traffic_rollups (reverse_tunnel_id, resolution_secs, bucket_start);
CREATE INDEX traffic_rollups_age ON traffic_rollups (resolution_secs, bucket_start);
