"""normalize against golden CloudTrail payloads: the official npm example, pip and maven URIs, metadata."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from collectors.cloudtrail_load import normalize_records

GOLDEN = json.loads((Path(__file__).parent.parent / "fixtures" / "cloudtrail_golden.json").read_text())


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=[c["name"] for c in GOLDEN["cases"]])
def test_golden_record_normalizes_to_expected_row(case):
    (row,) = normalize_records([case["record"]])
    expected = dict(case["expected"], event_at=datetime.fromisoformat(case["expected"]["event_at"]))
    assert row == expected


def test_only_codeartifact_records_are_kept():
    rows = normalize_records([GOLDEN["not_codeartifact"], GOLDEN["cases"][0]["record"]])
    assert [r["event_id"] for r in rows] == [GOLDEN["cases"][0]["record"]["eventID"]]


def test_wrongly_typed_fields_become_null_instead_of_failing():
    rec = dict(GOLDEN["cases"][0]["record"], userIdentity="not-an-object", eventVersion="9.99", brandNewField={"x": 1})
    (row,) = normalize_records([rec])
    assert row["principal_arn"] is None and row["package"] == "lodash" and row["asset"] == "lodash-4.17.20.tgz"


def test_hostile_package_names_round_trip_exactly():
    name = "=HYPERLINK(\"http://x\")<script>alert(1)</script>\u202e\u200b\n'; DROP TABLE events;--"
    rec = json.loads(json.dumps(GOLDEN["cases"][0]["record"]))
    rec["requestParameters"]["packageName"] = name
    (row,) = normalize_records([rec])
    assert row["package"] == name
