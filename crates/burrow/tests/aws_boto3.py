"""boto3 against burrow's AWS IoT Secure Tunneling compatible API (driven by aws_boto3.rs).

Environment: BURROW_AWS_ENDPOINT (http://127.0.0.1:PORT), BURROW_AWS_KEY_ID, BURROW_AWS_SECRET.
Subcommands print one JSON object on stdout; a failed check raises (exit code != 0).
"""
import datetime
import json
import os
import sys
from unittest import mock

import boto3
import botocore.config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["BURROW_AWS_ENDPOINT"]
KEY_ID = os.environ["BURROW_AWS_KEY_ID"]
SECRET = os.environ["BURROW_AWS_SECRET"]


def client(key_id=KEY_ID, secret=SECRET):
    return boto3.client(
        "iotsecuretunneling",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def expect_error(code, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {code}, call succeeded")


def cmd_open(dsn):
    r = client().open_tunnel(
        description="from boto3",
        destinationConfig={"thingName": dsn, "services": ["SSH1"]},
        timeoutConfig={"maxLifetimeTimeoutMinutes": 30},
        tags=[{"key": "team", "value": "ops"}],
    )
    assert r["tunnelArn"].endswith(":tunnel/" + r["tunnelId"]), r
    return {
        "tunnelId": r["tunnelId"],
        "tunnelArn": r["tunnelArn"],
        "source": r["sourceAccessToken"],
        "destination": r["destinationAccessToken"],
    }


def cmd_describe(tunnel_id):
    t = client().describe_tunnel(tunnelId=tunnel_id)["tunnel"]
    assert isinstance(t["createdAt"], datetime.datetime), t
    assert t["timeoutConfig"]["maxLifetimeTimeoutMinutes"] == 30, t
    return {
        "status": t["status"],
        "source": t["sourceConnectionState"]["status"],
        "destination": t["destinationConnectionState"]["status"],
        "thingName": t["destinationConfig"].get("thingName"),
        "services": t["destinationConfig"]["services"],
    }


def cmd_rotate(tunnel_id, mode):
    r = client().rotate_tunnel_access_token(tunnelId=tunnel_id, clientMode=mode)
    assert ("sourceAccessToken" in r) == (mode in ("SOURCE", "ALL")), r
    assert ("destinationAccessToken" in r) == (mode in ("DESTINATION", "ALL")), r
    return {"source": r.get("sourceAccessToken"), "destination": r.get("destinationAccessToken")}


def cmd_checks(dsn, first_id):
    c = client()
    # Paging with a thingName filter: 3 more tunnels for a fresh thing name.
    thing = dsn + "-paging"
    ids = [
        c.open_tunnel(destinationConfig={"thingName": thing, "services": ["SSH1"]})["tunnelId"]
        for _ in range(3)
    ]
    page = c.list_tunnels(thingName=thing, maxResults=2)
    assert len(page["tunnelSummaries"]) == 2 and page.get("nextToken"), page
    rest = c.list_tunnels(thingName=thing, maxResults=2, nextToken=page["nextToken"])
    assert len(rest["tunnelSummaries"]) == 1 and "nextToken" not in rest, rest
    listed = [s["tunnelId"] for s in page["tunnelSummaries"] + rest["tunnelSummaries"]]
    assert listed == list(reversed(ids)), (listed, ids)  # newest first
    everything = [s["tunnelId"] for s in c.list_tunnels()["tunnelSummaries"]]
    assert first_id in everything and set(ids) <= set(everything), everything
    only_dsn = [s["tunnelId"] for s in c.list_tunnels(thingName=dsn)["tunnelSummaries"]]
    assert first_id in only_dsn and not set(ids) & set(only_dsn), only_dsn
    expect_error("ValidationException", c.list_tunnels, maxResults=101)
    expect_error("ValidationException", c.list_tunnels, nextToken="bm9wZQ")

    # Tags.
    arn = c.describe_tunnel(tunnelId=ids[0])["tunnel"]["tunnelArn"]
    c.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    c.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "3"}])
    tags = {t["key"]: t["value"] for t in c.list_tags_for_resource(resourceArn=arn)["tags"]}
    assert tags == {"a": "3", "b": "2"}, tags
    c.untag_resource(resourceArn=arn, tagKeys=["a"])
    tags = c.list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags == [{"key": "b", "value": "2"}], tags
    first_arn = c.describe_tunnel(tunnelId=first_id)["tunnel"]["tunnelArn"]
    assert c.list_tags_for_resource(resourceArn=first_arn)["tags"] == [{"key": "team", "value": "ops"}]
    expect_error("ResourceNotFoundException", c.list_tags_for_resource,
                 resourceArn=arn.replace(ids[0], "00000000-0000-0000-0000-000000000000"))

    # Close without and with delete.
    c.close_tunnel(tunnelId=ids[1])
    assert c.describe_tunnel(tunnelId=ids[1])["tunnel"]["status"] == "CLOSED"
    c.close_tunnel(tunnelId=ids[2], delete=True)
    expect_error("ResourceNotFoundException", c.describe_tunnel, tunnelId=ids[2])
    expect_error("ResourceNotFoundException", c.close_tunnel, tunnelId="no-such-tunnel")
    e = expect_error("ResourceNotFoundException", c.describe_tunnel, tunnelId="no-such-tunnel")
    assert isinstance(e, c.exceptions.ResourceNotFoundException), type(e)

    # Validation the server must do itself (botocore does not check these).
    expect_error("ValidationException", c.open_tunnel,
                 timeoutConfig={"maxLifetimeTimeoutMinutes": 721})
    expect_error("ValidationException", c.rotate_tunnel_access_token,
                 tunnelId=ids[0], clientMode="BOTH")
    expect_error("ValidationException", c.rotate_tunnel_access_token, tunnelId=ids[0],
                 clientMode="SOURCE", destinationConfig={"services": ["SSH1"]})
    expect_error("ValidationException", c.open_tunnel,
                 destinationConfig={"services": ["A", "B", "C", "D"]})

    # Authentication failures.
    expect_error("UnrecognizedClientException", client(key_id="AKIAAAAAAAAAAAAAAAAA").list_tunnels)
    expect_error("InvalidSignatureException", client(secret="x" * 40).list_tunnels)
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    with mock.patch("botocore.auth.get_current_datetime", return_value=old):
        e = expect_error("InvalidSignatureException", c.list_tunnels)
    assert "Signature expired" in e.response["Error"]["Message"], e.response
    return {"ok": True, "other_project_probe": ids[0]}


def cmd_expect(code, op, tunnel_id):
    c = client()
    fn = {"describe": c.describe_tunnel, "close": c.close_tunnel}[op]
    expect_error(code, fn, tunnelId=tunnel_id)
    return {"ok": True}


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    out = {
        "open": cmd_open,
        "describe": cmd_describe,
        "rotate": cmd_rotate,
        "checks": cmd_checks,
        "expect": cmd_expect,
    }[cmd](*args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
