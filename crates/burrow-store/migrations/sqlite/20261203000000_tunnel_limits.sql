-- Per-tunnel traffic limits (rate, bandwidth, connections per client) as one JSON object;
-- NULL means no limits.
ALTER TABLE reverse_tunnels ADD COLUMN traffic_limits TEXT;
