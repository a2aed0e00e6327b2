-- Cluster: which node holds each broker tunnel's destination peer (the device's agent).
-- A row counts only while its node's lease (nodes.instance_id, heartbeat) is live.
CREATE TABLE tunnel_presence (
    tunnel_id   TEXT PRIMARY KEY,
    node_name   TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    since       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tunnel_presence_node ON tunnel_presence (node_name, instance_id);
