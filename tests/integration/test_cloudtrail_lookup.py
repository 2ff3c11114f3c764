"""LookupEvents fallback (no trail configured): Stubber-validated pages, 2 calls/s, same normalize."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
from botocore.stub import Stubber

from collectors import cloudtrail
from tests.fixtures.trails import record
from tests.helpers import collect, make_settings, rows

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


class StubClients:
    def __init__(self, client):
        self.c = client

    def client(self, scope, service, region=None):
        assert service == "cloudtrail"
        return self.c


def _event(i: int) -> dict:
    rec = record(i, datetime(2026, 11, 20, 9, i % 60, tzinfo=UTC))
    return {"EventId": rec["eventID"], "EventName": rec["eventName"], "EventTime": datetime(2026, 11, 20, 9, tzinfo=UTC),
            "EventSource": "codeartifact.amazonaws.com", "CloudTrailEvent": json.dumps(rec)}


def test_lookup_events_pages_are_rate_limited_and_normalized(tmp_path, monkeypatch):
    client = boto3.client("cloudtrail", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    attrs = [{"AttributeKey": "EventSource", "AttributeValue": "codeartifact.amazonaws.com"}]
    pages = [[_event(i) for i in range(50)], [_event(i) for i in range(50, 100)], [_event(100), _event(3)]]
    for n, events in enumerate(pages):
        params = {"LookupAttributes": attrs, "StartTime": NOW.replace(day=10, hour=0), "EndTime": NOW, "MaxResults": 50}
        if n:
            params["NextToken"] = f"t{n}"
        resp = {"Events": events}
        if n < len(pages) - 1:
            resp["NextToken"] = f"t{n + 1}"
        stub.add_response("lookup_events", resp, params)
    clock = {"t": 100.0}
    waits = []
    def sleep(s):
        waits.append(s)
        clock["t"] += s

    # The collector's own clock only: patching the time module itself would also count the sleeps of other
    # threads in this process (py4j's, after the Spark tests ran in the same worker).
    monkeypatch.setattr(cloudtrail, "time", SimpleNamespace(monotonic=lambda: clock["t"], sleep=sleep))
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db, accounts=[{"id": "111122223333", "regions": ["us-east-1"]}])
    with stub:
        code = collect(db, [cloudtrail.SPEC], settings, clients=StubClients(client), now=NOW,
                       since=NOW.replace(day=10).date())
    assert code == 0
    stub.assert_no_pending_responses()
    assert waits == [0.5, 0.5]  # no more than 2 calls per second
    assert rows(db, "SELECT count(*), count(DISTINCT event_id), count(asset) FROM events") == [(101, 101, 101)]
    assert rows(db, "SELECT value FROM watermarks WHERE collector = 'cloudtrail'") == [("2026-11-20T09:59:00Z",)]
