"""iam/caa-collect.json holds exactly the IAM actions the collectors use: no more, no less, no wildcards.

Every AWS operation of an integration run over every collector path is recorded by a `before-call` handler
on every boto3 client created meanwhile (the harness of test_reliability.py): trail files from S3 (moto),
LookupEvents (Stubber), inventory (the fake CodeArtifact, every operation), CloudWatch and Cost Explorer
(moto), with and without configured accounts. Each operation maps to its IAM action through
core.aws.iam_action, the same function that names the action in an AccessDenied message.

sts:AssumeRole and sts:GetCallerIdentity are recorded but are not part of the policy: AssumeRole is allowed
by the identity that runs caa (in its own account) and by the role's trust policy, not by the policy
attached to the role in the collected account; GetCallerIdentity needs no permission at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from collectors import cloudtrail, cloudwatch, costexplorer, inventory
from core.aws import iam_action
from core.settings import load_settings
from tests.helpers import NO_CONFIG
from tests.integration.test_reliability import (
    SOURCE,
    Faults,
    World,
    WorldClients,
    run_world,
    world_context,
)

POLICY = Path(__file__).resolve().parents[2] / "iam" / "caa-collect.json"
NOT_IN_POLICY = {"sts:AssumeRole", "sts:GetCallerIdentity"}


class LookupClients(WorldClients):
    """WorldClients whose cloudtrail clients answer one (empty) LookupEvents page from a Stubber."""

    def client(self, scope: Any, service: str, region: str | None = None) -> Any:
        c = super().client(scope, service, region)
        if service == "cloudtrail":
            stub = Stubber(c)
            stub.add_response("lookup_events", {"Events": []})
            stub.activate()
        return c


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with world_context() as w:
        yield w


@pytest.fixture(scope="module")
def recorded(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """collector name -> the IAM actions of every call it made, over every path."""
    db = tmp_path_factory.mktemp("lp") / "caa.duckdb"
    no_accounts = load_settings(NO_CONFIG, cloudtrail={"sources": []})
    runs = [
        ("cloudtrail", {"specs": [cloudtrail.SPEC], "sources": (SOURCE,)}),
        ("cloudtrail", {"specs": [cloudtrail.SPEC], "sources": (), "clients": LookupClients}),
        ("inventory", {"specs": [inventory.SPEC]}),
        ("cloudwatch", {"specs": [cloudwatch.SPEC]}),
        ("cloudwatch", {"specs": [cloudwatch.SPEC], "settings": no_accounts}),
        ("costs", {"specs": [costexplorer.SPEC]}),
        ("costs", {"specs": [costexplorer.SPEC], "settings": no_accounts}),
    ]
    out: dict[str, set[str]] = {}
    for name, kwargs in runs:
        faults = Faults()
        assert run_world(db, world, faults, **kwargs) == 0, (name, kwargs)
        out.setdefault(name, set()).update(iam_action(service, op) for service, op in faults.calls)
    return out


def policy_actions() -> list[str]:
    doc = json.loads(POLICY.read_text())
    assert all(st["Effect"] == "Allow" for st in doc["Statement"])
    return [a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])]


def test_the_policy_holds_exactly_the_actions_the_collectors_call(recorded):
    used = set().union(*recorded.values())
    actions = policy_actions()
    assert not [a for a in actions if "*" in a], "no wildcard actions"
    assert len(actions) == len(set(actions)), "no action listed twice"
    assert set(actions) == used - NOT_IN_POLICY
    assert used & NOT_IN_POLICY == NOT_IN_POLICY  # both sts paths were exercised


def test_every_collector_path_was_exercised(recorded):
    assert recorded["cloudtrail"] == {"s3:ListBucket", "s3:GetObject", "cloudtrail:LookupEvents", "sts:AssumeRole"}
    assert {a for a in recorded["inventory"] if a.startswith("codeartifact:")} == {
        "codeartifact:" + op for op in ("ListDomains", "DescribeDomain", "ListRepositoriesInDomain",
                                        "DescribeRepository", "ListTagsForResource", "ListPackages",
                                        "ListPackageVersions", "DescribePackageVersion", "ListPackageVersionAssets",
                                        "ListPackageVersionDependencies")}


@pytest.mark.parametrize("module", [cloudwatch, costexplorer], ids=["cloudwatch", "costs"])
def test_collectors_that_declare_their_iam_actions_declare_what_they_call(recorded, module):
    assert set(module.IAM_ACTIONS) == recorded[module.NAME] - {"sts:AssumeRole"}

