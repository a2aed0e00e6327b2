#!/usr/bin/env python3
"""The seed's device client (ReverseTunnelManager.fetch_tunnel_config), pointed at burrow.

Usage: seed_client.py API_URL DSN DEVICE_PEM DEVICE_KEY CA_PEM

Fetches the config over mTLS twice, as the seed's agent would: once with requests'
cert=(cert, key) tuple, once with the seed's single-path form (cert and key in one PEM
file). Prints the tunnels as JSON; exits non-zero on any failure.
"""
import json
import os
import sys
import tempfile

import requests


class ReverseTunnelManager:
    def __init__(self, device_dsn, api_url, device_cert, verify):
        self.device_dsn = device_dsn
        self.api_url = api_url
        self.device_cert = device_cert
        self.verify = verify
        self.tunnels = []

    def fetch_tunnel_config(self):
        response = requests.get(
            f"{self.api_url}/api/v1/reverse-tunnels/devices/{self.device_dsn}/reverse-tunnels-config",
            cert=self.device_cert,
            verify=self.verify,
            timeout=20,
        )
        response.raise_for_status()
        config = response.json()
        self.tunnels = config["tunnels"]
        return self.tunnels

    def establish_tunnels(self):
        ready = []
        for tunnel_config in self.tunnels:
            if not tunnel_config["is_enabled"]:
                continue
            if not tunnel_config["tunnel_id"] or not tunnel_config["destination_access_token"]:
                continue
            ready.append(tunnel_config["name"])
        return ready


def main():
    api_url, dsn, cert, key, ca = sys.argv[1:6]
    tunnels = ReverseTunnelManager(dsn, api_url, (cert, key), ca).fetch_tunnel_config()

    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as combined:
        combined.write(open(cert).read() + open(key).read())
    os.chmod(combined.name, 0o600)
    try:
        manager = ReverseTunnelManager(dsn, api_url, combined.name, ca)
        again = manager.fetch_tunnel_config()
    finally:
        os.unlink(combined.name)
    assert [t["id"] for t in again] == [t["id"] for t in tunnels]
    print(json.dumps({"tunnels": tunnels, "ready": manager.establish_tunnels()}))


if __name__ == "__main__":
    main()
