"""The API contract, checked from outside (driven by api_contract.rs).

`fuzz`: schemathesis over the whole OpenAPI document of a running server — every phase
(examples, coverage, fuzzing, stateful), the checks below, a fixed seed and a bounded number of
examples — failing on any failure and on any operation left untested for lack of data.

`client`: generates a Python client from the document with openapi-python-client and drives
the seed's walk-through through it (project, device, tunnel; list, update, delete).

Environment: BURROW_API_URL (http://127.0.0.1:PORT), BURROW_TOKEN (an administrator's bearer
token), and for `fuzz` BURROW_DEVICE_{DSN,CERT,KEY,CA} (an enrolled device's certificate, for
the config endpoint on the device listener). `client` prints one JSON object on stdout.
"""
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

API = os.environ["BURROW_API_URL"]
TOKEN = os.environ["BURROW_TOKEN"]

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "use_after_free",
]
PHASES = ["examples", "coverage", "fuzzing", "stateful"]
# An operation no valid request ever reached was not tested: that fails the run.
FAIL_ON_WARNINGS = ["missing_auth", "missing_test_data", "base_url_mismatch"]
# Enrollment and invitation tokens are one-time secrets: only the stateful phase (the links
# from the device's registration, the invitation's creation) can hold a valid one, so their
# 4xx elsewhere are expected. Its coverage is
# checked below like every operation's.
ONE_TIME_CREDENTIAL_OPERATIONS = [
    "enroll_device",
    "lookup_invitation",
    "accept_invitation",
    "sign_up_by_invitation",
]
# Single sign-on needs an OpenID provider (not configured here: 404) and secrets only a
# browser's sign-in holds (the sealed state cookie, a one-time code bound to a cookie). Their
# answers are checked like every operation's, but no request of the fuzzer can succeed; their
# success paths are tested against a real provider by tests/oidc.rs and oidc_browser.rs.
BROWSER_FLOW_OPERATIONS = ["start_oidc_login", "finish_oidc_login", "exchange_oidc_code"]
# What those operations still warn (and fail) on: not "all valid requests were refused",
# which is their nature here (schemathesis reads that per operation only from `display`).
BROWSER_FLOW_WARNINGS = [w for w in FAIL_ON_WARNINGS if w != "missing_test_data"]
SEED = 20261201
# Fuzzing and stateful testing repeat until this is spent (seconds).
TIME_BUDGET = int(os.environ.get("BURROW_CONTRACT_SECONDS", "110"))
MAX_EXAMPLES = int(os.environ.get("BURROW_CONTRACT_EXAMPLES", "12"))
# Steps per stateful scenario: enough for project → device → tunnel → its operations.
STATEFUL_STEPS = 30


def toml_string(s):
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(s)


def schemathesis_config():
    device = "" if "BURROW_DEVICE_CERT" not in os.environ else f"""
[[operations]]
include-operation-id = "get_device_config"
request-cert = {toml_string(os.environ["BURROW_DEVICE_CERT"])}
request-cert-key = {toml_string(os.environ["BURROW_DEVICE_KEY"])}
tls-verify = {toml_string(os.environ["BURROW_DEVICE_CA"])}
# A version the config never has: the call answers at once instead of long-polling.
parameters = {{ dsn = {toml_string(os.environ["BURROW_DEVICE_DSN"])}, version = "fuzzing" }}
"""
    one_time = "".join(
        f"""
[[operations]]
include-operation-id = "{op}"
warnings = {{ fail-on = {json.dumps([w for w in FAIL_ON_WARNINGS if w != "missing_auth"])} }}
"""
        for op in ONE_TIME_CREDENTIAL_OPERATIONS
    )
    one_time += "".join(
        f"""
[[operations]]
include-operation-id = "{op}"
warnings = {{ display = {json.dumps(BROWSER_FLOW_WARNINGS)}, fail-on = {json.dumps(BROWSER_FLOW_WARNINGS)} }}
"""
        for op in BROWSER_FLOW_OPERATIONS
    )
    # A device's DSN can be registered again in any project (`POST /api/v1/projects/{id}/devices`),
    # which schemathesis cannot tell is a re-creation of `/api/v1/devices/{dsn}`: its
    # use-after-free check would call the new device the deleted one. Deletion is checked for
    # tunnels here, and for devices by the client walk-through below.
    recreatable = """
[[operations]]
include-operation-id = "get_device"
checks = { use_after_free = { enabled = false } }
"""
    # Signing out everywhere voids the caller's tokens: a user of its own does it.
    leaver = "" if "BURROW_LOGOUT_TOKEN" not in os.environ else f"""
[[operations]]
include-operation-id = "logout_all"
headers = {{ Authorization = {toml_string("Bearer " + os.environ["BURROW_LOGOUT_TOKEN"])} }}
"""
    # A tunnel's traffic, read from tunnel 2 of SHARE1 (seeded, never deleted).
    access_log = "".join(
        f"""
[[operations]]
include-operation-id = "{op}"
parameters = {{ dsn = "SHARE1", id = 2 }}
"""
        for op in ("get_reverse_tunnel_access_log", "get_reverse_tunnel_analytics")
    )
    # Operations that take a device, a tunnel, a project or a membership away act on seeded
    # ones of their own (api_contract.rs), never on what the other examples name (ABC123, its
    # tunnel 1, project 1), whatever order the seed gives the operations.
    removals = "".join(
        f"""
[[operations]]
include-operation-id = "{op}"
parameters = {params}
"""
        for op, params in (
            ("delete_device", '{ dsn = "DEL1" }'),
            ("delete_reverse_tunnel", '{ dsn = "DEL2", id = 3 }'),
            ("delete_project", "{ id = 2 }"),
            ("remove_project_member", "{ id = 3, user_id = 2 }"),
            ("update_project_member", "{ id = 4, user_id = 2 }"),
            ("update_user", "{ id = 4 }"),
            ("reset_password", "{ id = 5 }"),
            ("delete_user", "{ id = 6 }"),
        )
    )
    # Operations that must be the caller's own: accepting an invitation of the example email
    # (user 3's), and changing the example password (user 7's; it signs that user out).
    own = "".join(
        f"""
[[operations]]
include-operation-id = "{op}"
headers = {{ Authorization = {toml_string("Bearer " + os.environ[var])} }}
"""
        for op, var in (
            ("accept_invitation", "BURROW_INVITEE_TOKEN"),
            ("change_password", "BURROW_PASSWORD_TOKEN"),
        )
        if var in os.environ
    )
    # `/metrics` takes the server's metrics token, not a user's.
    metrics = "" if "BURROW_METRICS_TOKEN" not in os.environ else f"""
[[operations]]
include-operation-id = "metrics"
headers = {{ Authorization = {toml_string("Bearer " + os.environ["BURROW_METRICS_TOKEN"])} }}
"""
    return f"""
headers = {{ Authorization = {toml_string("Bearer " + TOKEN)} }}
workers = 1
request-timeout = 30

# No replay of earlier runs' crashes: every run is the seed's, from scratch.
[cache]
enabled = false

[generation]
database = "none"
max-examples = {MAX_EXAMPLES}

[phases.stateful]
max-steps = {STATEFUL_STEPS}

[warnings]
fail-on = {json.dumps(FAIL_ON_WARNINGS)}
{device}
{one_time}
{recreatable}
{leaver}
{access_log}
{removals}
{own}
{metrics}
"""


def untested_operations(doc, har):
    """Operations of `doc` that no request of the run got a non-error answer from."""
    answered = {}
    for entry in json.loads(har.read_text())["log"]["entries"]:
        path = re.sub(r"^https?://[^/]+", "", entry["request"]["url"]).split("?")[0]
        key = (entry["request"]["method"].lower(), path)
        answered[key] = answered.get(key, False) or entry["response"]["status"] < 400
    missing = []
    for template, item in doc["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            if op["operationId"] == "get_openapi":
                continue  # the run loads the document from it
            if op["operationId"] in BROWSER_FLOW_OPERATIONS:
                continue  # see BROWSER_FLOW_OPERATIONS
            if not any(ok for (m, p), ok in answered.items() if m == method and pattern.match(p)):
                missing.append(f"{method.upper()} {template}")
    return missing


def cmd_fuzz():
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "schemathesis.toml"
        config.write_text(schemathesis_config())
        har = Path(tmp) / "run.har"
        args = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            # No --url: it would override the config endpoint's own server (the device listener).
            f"{API}/api/v1/openapi.json",
            "--phases",
            ",".join(PHASES),
            "--checks",
            ",".join(CHECKS),
            "--seed",
            str(SEED),
            "--max-time",
            str(TIME_BUDGET),
            "--report",
            "har",
            "--report-har-path",
            str(har),
            "--no-color",
            "--output-truncate",
            "false",
        ]
        extra = os.environ.get("BURROW_CONTRACT_ARGS")
        if extra:
            args += extra.split()
        code = subprocess.run(args, check=False, cwd=tmp).returncode
        if os.environ.get("BURROW_CONTRACT_KEEP_HAR"):
            Path(os.environ["BURROW_CONTRACT_KEEP_HAR"]).write_text(har.read_text())
        missing = untested_operations(call("/api/v1/openapi.json"), har)
        if missing:
            print("operations no request got a non-error answer from:", *missing, sep="\n  ")
            return code or 1
        print("every operation answered at least one request without an error")
        return code


def call(path, token=None):
    req = urllib.request.Request(API + path)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def generate_client(tmp):
    doc = Path(tmp) / "openapi.json"
    doc.write_text(json.dumps(call("/api/v1/openapi.json")))
    out = Path(tmp) / "client"
    config = Path(tmp) / "generator.yaml"
    config.write_text("post_hooks: []\n")  # no formatter run: ruff is not needed
    subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(doc), "--output-path", str(out), "--meta", "none",
         "--config", str(config), "--fail-on-warning"],
        check=True,
        stdout=sys.stderr,
    )
    sys.path.insert(0, str(out.parent))
    return importlib.import_module(out.name)


def cmd_client():
    with tempfile.TemporaryDirectory() as tmp:
        client_pkg = generate_client(tmp)
        from client import AuthenticatedClient
        from client.api.devices import delete_device, get_device, list_devices, register_device
        from client.api.projects import create_project
        from client.api.reverse_tunnels import (
            create_reverse_tunnel,
            delete_reverse_tunnel,
            get_reverse_tunnel,
            list_reverse_tunnels,
            update_reverse_tunnel,
        )
        from client.models import (
            CreateProject,
            CreateReverseTunnel,
            Error,
            RegisterDevice,
            TunnelProtocol,
            UpdateReverseTunnel,
        )

        assert client_pkg is not None
        api = AuthenticatedClient(base_url=API, token=TOKEN, raise_on_unexpected_status=True)
        with api as c:
            project = create_project.sync(client=c, body=CreateProject(name="robots"))
            device = register_device.sync(
                project.id, client=c, body=RegisterDevice(dsn="CLIENT1", name="robot 1")
            )
            assert device.dsn == "CLIENT1" and device.enrollment_token, device
            assert any(d.dsn == "CLIENT1" for d in list_devices.sync(client=c))
            tunnel = create_reverse_tunnel.sync(
                "CLIENT1",
                client=c,
                body=CreateReverseTunnel(
                    name="Web Dashboard",
                    description="Robot control interface",
                    local_port=8080,
                    protocol=TunnelProtocol.HTTP,
                    require_auth=True,
                ),
            )
            assert tunnel.public_url == "device-client1.localhost", tunnel.public_url
            listed = list_reverse_tunnels.sync("CLIENT1", client=c)
            assert listed.total == 1 and listed.items[0].id == tunnel.id, listed
            updated = update_reverse_tunnel.sync(
                "CLIENT1", tunnel.id, client=c, body=UpdateReverseTunnel(is_enabled=False)
            )
            assert updated.is_enabled is False, updated
            assert updated.protocol == TunnelProtocol.HTTP, updated
            deleted = delete_reverse_tunnel.sync("CLIENT1", tunnel.id, client=c)
            assert deleted.message, deleted
            gone = get_reverse_tunnel.sync_detailed("CLIENT1", tunnel.id, client=c)
            assert gone.status_code == 404 and isinstance(gone.parsed, Error), gone
            assert gone.parsed.code == "not_found", gone.parsed
            assert list_reverse_tunnels.sync("CLIENT1", client=c).total == 0
            delete_device.sync("CLIENT1", client=c)
            assert get_device.sync_detailed("CLIENT1", client=c).status_code == 404
            missing = list_reverse_tunnels.sync_detailed("CLIENT1", client=c)
            assert missing.status_code == 404, missing
        print(
            json.dumps(
                {
                    "project": project.id,
                    "tunnel": tunnel.id,
                    "public_url": tunnel.public_url,
                    "updated_enabled": updated.is_enabled,
                }
            )
        )
        return 0


if __name__ == "__main__":
    commands = {"fuzz": cmd_fuzz, "client": cmd_client}
    sys.exit(commands[sys.argv[1]]())
