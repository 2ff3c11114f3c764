"""Golden CodeArtifact payloads (checked against the botocore model) -> inventory rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import botocore.session
import pytest
from botocore.validate import validate_parameters

from collectors.inventory_normalize import (
    KnownVersion,
    RepositoryPayload,
    asset_rows,
    can_reuse,
    dependency_rows,
    domain_row,
    package_row,
    repository_row,
    repository_rows,
    snapshot_row,
)

ACCT = "123456789012"
CET = timezone(timedelta(hours=1))  # botocore hands back timestamps in the local zone
NOW = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)
BASE = {"account_id": ACCT, "region": "eu-west-1", "domain": "corp", "repository": "app"}

DOMAIN = {"name": "corp", "owner": ACCT, "arn": f"arn:aws:codeartifact:eu-west-1:{ACCT}:domain/corp",
          "status": "Active", "createdTime": datetime(2023, 1, 1, 1, 0, tzinfo=CET),
          "encryptionKey": f"arn:aws:kms:eu-west-1:{ACCT}:key/k", "repositoryCount": 3,
          "assetSizeBytes": 123_456_789, "s3BucketArn": "arn:aws:s3:::assets-bucket"}
REPOSITORY = {"name": "app", "administratorAccount": ACCT, "domainName": "corp", "domainOwner": ACCT,
              "arn": f"arn:aws:codeartifact:eu-west-1:{ACCT}:repository/corp/app", "description": "team app",
              "upstreams": [{"repositoryName": "npm-store"}, {"repositoryName": "shared"}],
              "externalConnections": [{"externalConnectionName": "public:npmjs", "packageFormat": "npm",
                                       "status": "Available"}],
              "createdTime": datetime(2023, 2, 1, tzinfo=UTC)}
TAGS = [{"key": "team", "value": "web"}, {"key": "cost-center", "value": "42"}]
PACKAGE = {"format": "npm", "namespace": "acme", "package": "web",
           "originConfiguration": {"restrictions": {"publish": "ALLOW", "upstream": "BLOCK"}}}
VERSIONS = {"format": "npm", "namespace": "acme", "package": "web", "defaultDisplayVersion": "1.1.0", "versions": [
    {"version": "1.0.0", "revision": "REV0", "status": "Archived",
     "origin": {"originType": "INTERNAL", "domainEntryPoint": {"repositoryName": "app"}}},
    {"version": "1.1.0", "revision": "REV1", "status": "Published",
     "origin": {"originType": "INTERNAL", "domainEntryPoint": {"repositoryName": "app"}}}]}
DESCRIPTION = {"format": "npm", "namespace": "acme", "packageName": "web", "displayName": "web",
               "version": "1.1.0", "publishedTime": datetime(2024, 2, 3, 5, 5, 6, tzinfo=CET), "licenses": [],
               "revision": "REV1", "status": "Published",
               "origin": {"originType": "INTERNAL", "domainEntryPoint": {"repositoryName": "app"}}}
ASSETS = {"format": "npm", "namespace": "acme", "package": "web", "version": "1.1.0", "versionRevision": "REV1",
          "assets": [{"name": "web-1.1.0.tgz", "size": 2048,
                      "hashes": {"MD5": "0" * 32, "SHA-1": "1" * 40, "SHA-256": "a" * 64}}]}
DEPENDENCIES = {"format": "npm", "namespace": "acme", "package": "web", "version": "1.1.0",
                "versionRevision": "REV1", "dependencies": [
                    {"package": "lodash", "dependencyType": "regular", "versionRequirement": "^4.17.21"},
                    {"namespace": "acme", "package": "util", "dependencyType": "dev", "versionRequirement": "1.x"}]}


@pytest.mark.parametrize("operation, payload", [
    ("DescribeDomain", {"domain": DOMAIN}), ("DescribeRepository", {"repository": REPOSITORY}),
    ("ListTagsForResource", {"tags": TAGS}), ("ListPackages", {"packages": [PACKAGE]}),
    ("ListPackageVersions", VERSIONS), ("DescribePackageVersion", {"packageVersion": DESCRIPTION}),
    ("ListPackageVersionAssets", ASSETS), ("ListPackageVersionDependencies", DEPENDENCIES)])
def test_golden_payloads_match_the_botocore_model(operation, payload):
    model = botocore.session.get_session().get_service_model("codeartifact")
    validate_parameters(payload, model.operation_model(operation).output_shape)


def test_domain_and_snapshot_rows():
    assert domain_row(DOMAIN, "eu-west-1", NOW) == {
        "account_id": ACCT, "region": "eu-west-1", "domain": "corp", "status": "Active",
        "created_at": datetime(2023, 1, 1, 0, 0, tzinfo=UTC), "repository_count": 3,
        "asset_size_bytes": 123_456_789, "encryption_key": f"arn:aws:kms:eu-west-1:{ACCT}:key/k",
        "last_seen_at": NOW}
    assert snapshot_row(DOMAIN, "eu-west-1", NOW) == {
        "snapshot_date": date(2024, 3, 1), "account_id": ACCT, "region": "eu-west-1", "domain": "corp",
        "asset_size_bytes": 123_456_789, "collected_at": NOW}


def test_repository_row_flattens_upstreams_connections_and_tags():
    row = repository_row(REPOSITORY, TAGS, "eu-west-1", NOW)
    assert row["upstreams"] == ["npm-store", "shared"]
    assert row["external_connections"] == ["public:npmjs"]
    assert row["tags"] == {"team": "web", "cost-center": "42"}
    assert (row["account_id"], row["domain"], row["repository"]) == (ACCT, "corp", "app")


def test_package_asset_and_dependency_rows():
    assert package_row(BASE, PACKAGE, NOW) == {**BASE, "format": "npm", "namespace": "acme", "package": "web",
                                               "origin_publish": "ALLOW", "origin_upstream": "BLOCK",
                                               "last_seen_at": NOW}
    key = ("npm", "acme", "web", "1.1.0")
    assert asset_rows(BASE, key, ASSETS["assets"]) == [{
        **BASE, "format": "npm", "namespace": "acme", "package": "web", "version": "1.1.0",
        "asset": "web-1.1.0.tgz", "size_bytes": 2048, "sha256": "a" * 64}]
    deps = dependency_rows(BASE, key, DEPENDENCIES["dependencies"])
    assert [(d["dependency_namespace"], d["dependency_package"], d["dependency_type"], d["version_requirement"])
            for d in deps] == [(None, "lodash", "regular", "^4.17.21"), ("acme", "util", "dev", "1.x")]


def test_repository_rows_mix_fetched_and_stored_versions():
    key0, key1 = ("npm", "acme", "web", "1.0.0"), ("npm", "acme", "web", "1.1.0")
    stored_asset = {**BASE, "format": "npm", "namespace": "acme", "package": "web", "version": "1.0.0",
                    "asset": "web-1.0.0.tgz", "size_bytes": 1000, "sha256": "b" * 64}
    first_seen = datetime(2023, 6, 1, tzinfo=UTC)
    known = {key0: KnownVersion("REV0", "Archived", datetime(2023, 5, 1, tzinfo=UTC), first_seen, [stored_asset])}
    payload = RepositoryPayload({}, REPOSITORY, TAGS, [PACKAGE], {key0[:3]: VERSIONS["versions"]},
                                {key1: DESCRIPTION}, {key1: ASSETS["assets"]},
                                {key1: DEPENDENCIES["dependencies"]})
    rows = repository_rows(payload, known, "eu-west-1", NOW)
    assert [(v["version"], v["status"], v["revision"], v["origin_type"], v["published_at"], v["first_seen_at"])
            for v in rows.package_versions] == [
        ("1.0.0", "Archived", "REV0", "INTERNAL", datetime(2023, 5, 1, tzinfo=UTC), first_seen),
        ("1.1.0", "Published", "REV1", "INTERNAL", datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC), NOW)]
    assert [a["asset"] for a in rows.assets] == ["web-1.0.0.tgz", "web-1.1.0.tgz"]
    assert len(rows.package_dependencies) == 2 and len(rows.packages) == 1


def test_can_reuse_only_an_unchanged_revision():
    known = KnownVersion("REV1", "Published", None, NOW)
    assert can_reuse(known, {"version": "1", "revision": "REV1", "status": "Archived"})
    assert not can_reuse(known, {"version": "1", "revision": "REV2", "status": "Published"})
    assert not can_reuse(known, {"version": "1", "revision": "REV1", "status": "Disposed"})  # assets deleted
    assert not can_reuse(None, {"version": "1", "revision": "REV1", "status": "Published"})
