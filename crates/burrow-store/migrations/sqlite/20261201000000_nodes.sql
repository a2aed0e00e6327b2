-- Cluster nodes: one row per node name, holding its heartbeat lease.
CREATE TABLE nodes (
    name         TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    region       TEXT NOT NULL,
    roles        TEXT NOT NULL,
    cluster_url  TEXT,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    left_at      TEXT,
    tunnels_held INTEGER NOT NULL DEFAULT 0
);
