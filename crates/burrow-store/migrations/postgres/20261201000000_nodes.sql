-- Cluster nodes: one row per node name, holding its heartbeat lease.
CREATE TABLE nodes (
    name         TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    region       TEXT NOT NULL,
    roles        TEXT NOT NULL,
    cluster_url  TEXT,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    left_at      TIMESTAMPTZ,
    tunnels_held BIGINT NOT NULL DEFAULT 0
);
