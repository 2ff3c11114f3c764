"""`caa apply` end to end against a small store on disk and a botocore Stubber (responses and request
parameters validated against the CodeArtifact model): batches, expectedStatus/versionRevisions, partial
failures, resume after an interruption, the re-check, staged cleanup, confirmations and hostile names."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from actions.apply import run_apply
from analytics import cleanup as C
from analytics.cleanup import REPORT_COLUMNS
from analytics.reports import read_table, write_table
from core import store
from core.clock import utc_now
from core.errors import AwsAccessError, ConfigError, DataError
from tests.fixtures.hostile import HOSTILE
from tests.helpers import make_settings, rows, writer

ACCT, REGION, DOMAIN, REPO = "111111111111", "us-east-1", "corp", "app"
T_REPORT = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
ARN = f"arn:aws:sts::{ACCT}:assumed-role/caa-cleanup/alice"
EVIL = HOSTILE["formula-eq"]
# The policy the tests' reports record: every idle version of a package may go (keep none of the newest).
POLICY = ('{"keep_latest":0,"keep_latest_per_major":0,"min_age_days":90,"pins":[],"protect":[],'
          '"statuses":["Published","Unlisted","Archived"],"unused_days":180}')


# -- the estate: a store with versions, a report over them, and stubbed AWS ------------------------------

def build_store(db: Path, versions: list[tuple], events: list[tuple] = (), deps: list[tuple] = (),
                regions: tuple[str, ...] = (REGION,)) -> None:
    """versions: (namespace, package, version, status, revision, origin_type[, format: npm]); events: (package,
    version, event_at, error_code[, format: npm])."""
    with writer(db) as con, store.load_transaction(con):
        for region in regions:
            con.execute("INSERT INTO domains (account_id, region, domain, last_seen_at) VALUES (?, ?, ?, ?)",
                        [ACCT, region, DOMAIN, T_REPORT])
        for ns, pkg, ver, status, rev, origin, *fmt in versions:
            con.execute("INSERT INTO package_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                        [ACCT, REGION, DOMAIN, REPO, *(fmt or ["npm"]), ns, pkg, ver, status, rev, origin,
                         T_REPORT - timedelta(days=400), T_REPORT - timedelta(days=400), T_REPORT])
        for i, at in enumerate((T_REPORT - timedelta(days=400), T_REPORT - timedelta(hours=1))):  # CloudTrail's span
            con.execute("INSERT INTO event_rows (event_id, event_at, event_name, account_id, region, domain) "
                        "VALUES (?, ?, 'GetAuthorizationToken', ?, ?, ?)", [f"token{i}", at, ACCT, REGION, DOMAIN])
        for i, (pkg, ver, at, error, *fmt) in enumerate(events):
            con.execute("INSERT INTO event_rows (event_id, event_at, event_name, account_id, region, domain, repository, "
                        "format, namespace, package, version, asset, error_code) "
                        "VALUES (?, ?, 'ReadFromRepository', ?, ?, ?, ?, ?, NULL, ?, ?, 'a.tgz', ?)",
                        [f"e{i}", at, ACCT, REGION, DOMAIN, REPO, *(fmt or ["npm"]), pkg, ver, error])
        for pkg, ver, dep, req in deps:
            con.execute("INSERT INTO package_dependencies VALUES (?, ?, ?, ?, 'npm', NULL, ?, ?, NULL, ?, 'regular', ?)",
                        [ACCT, REGION, DOMAIN, REPO, pkg, ver, dep, req])


def write_report(path: Path, versions: list[tuple], approve: str | None = "yes", policy: str | None = None) -> Path:
    import pandas as pd

    recs = [{"account_id": ACCT, "domain": DOMAIN, "repository": REPO, "format": (fmt or ["npm"])[0],
             "namespace": ns,
             "package": pkg, "version": ver, "status": status, "origin_type": "INTERNAL", "published_at": None,
             "last_downloaded_at": None, "downloads_90d": 0, "size_bytes": 1000, "reclaimable_bytes": 1000,
             "monthly_savings_usd": 0.01, "refetchable": False, "reason": "unused", "approve": approve,
             "generated_at": None, "policy": policy or POLICY}
            for ns, pkg, ver, status, _rev, _o, *fmt in versions]
    write_table(pd.DataFrame(recs, columns=REPORT_COLUMNS), path)
    os.utime(path, (T_REPORT.timestamp(), T_REPORT.timestamp()))
    return path


class StubClients:
    """core.aws.Clients stand-in: one stubbed codeartifact and one stubbed sts client."""

    def __init__(self, caller: bool = True):
        kw = {"region_name": REGION, "aws_access_key_id": "test", "aws_secret_access_key": "test"}
        self.ca, self.sts = boto3.client("codeartifact", **kw), boto3.client("sts", **kw)
        self.stub, self.sts_stub = Stubber(self.ca), Stubber(self.sts)
        if caller:
            self.sts_stub.add_response("get_caller_identity", {"UserId": "AID", "Account": ACCT, "Arn": ARN}, {})
        self.stub.activate()
        self.sts_stub.activate()

    def client(self, scope, service, region=None):
        assert scope.account_id == ACCT and scope.region == REGION
        return {"codeartifact": self.ca, "sts": self.sts}[service]

    def listing(self, pkg: str, versions: list[tuple], ns: str | None = None, fmt: str = "npm") -> None:
        params = {"domain": DOMAIN, "domainOwner": ACCT, "repository": REPO, "format": fmt, "package": pkg}
        body = {"format": fmt, "package": pkg,
                "versions": [{"version": v, "status": s, "revision": r} for v, s, r in versions]}
        if ns is not None:
            params["namespace"] = body["namespace"] = ns
        self.stub.add_response("list_package_versions", body, params)

    def write(self, op: str, pkg: str, versions: list[str], expected: dict, ok: dict | None = None,
              failed: dict | None = None, ns: str | None = None, fmt: str = "npm") -> None:
        params = {"domain": DOMAIN, "domainOwner": ACCT, "repository": REPO, "format": fmt, "package": pkg,
                  "versions": versions, **expected}
        if ns is not None:
            params["namespace"] = ns
        status = {"update_package_versions_status": expected.get("targetStatus"),
                  "dispose_package_versions": "Disposed", "delete_package_versions": "Deleted"}[op]
        ok = ok if ok is not None else {v: {"revision": f"{v}-new", "status": status} for v in versions}
        self.stub.add_response(op, {"successfulVersions": ok, "failedVersions": failed or {}}, params)

    def done(self) -> None:
        self.stub.assert_no_pending_responses()


class NoAws:
    def client(self, *a, **k):
        raise AssertionError("a dry run must not make any AWS client")


def web(n: int, status: str = "Published") -> list[tuple]:
    return [("acme", "web", f"1.0.{i}", status, f"r{i}", "INTERNAL") for i in range(n)]


def log(db: Path, where: str = "TRUE") -> list[tuple]:
    return rows(db, f"SELECT version, action, result, error_code, expected_status, expected_revision, who, message "
                    f"FROM apply_log WHERE {where} ORDER BY run_id, version")


@pytest.fixture
def estate(tmp_path):
    def make(versions, events=(), deps=(), protect=(), regions=(REGION,), report_versions=None, approve="yes",
             fmt="csv"):
        db = tmp_path / "caa.duckdb"
        build_store(db, versions, events, deps, regions)
        report = write_report(tmp_path / f"cleanup.{fmt}", report_versions or versions, approve)
        return db, report, make_settings(db=db, cleanup={"protect": list(protect)})
    return make


def apply(settings, report, action="archive", clients=None, **kw):
    out: list[str] = []
    code = run_apply(settings, report, action, clients=clients, echo=out.append, **kw)
    return code, "\n".join(out)


# -- tests -------------------------------------------------------------------------------------------------

def test_dry_run_makes_no_aws_call_and_shows_each_domain(estate):
    db, report, settings = estate(web(3))
    code, out = apply(settings, report, clients=NoAws())
    assert code == 0
    assert "dry run (no AWS call made)" in out and f"{ACCT} {REGION} {DOMAIN}: 3 versions" in out
    assert {r[2] for r in log(db)} == {"planned"}
    assert read_table(report.with_name("cleanup.result.csv"))["result"].tolist() == ["planned"] * 3


def test_150_versions_of_one_package_go_in_batches_of_100_and_50(estate):
    versions = web(150)
    db, report, settings = estate(versions)
    aws = StubClients()
    aws.listing("web", [(v, s, r) for _, _, v, s, r, _ in versions], ns="acme")
    for chunk in (versions[:100], versions[100:]):
        names = [v for _, _, v, *_ in chunk]
        aws.write("update_package_versions_status", "web", names, ns="acme", expected={
            "expectedStatus": "Published", "targetStatus": "Archived",
            "versionRevisions": {v: r for _, _, v, _, r, _ in chunk}})
    code, out = apply(settings, report, clients=aws, execute=True, yes=True)
    aws.done()
    assert code == 0 and "batch 1:" in out and "batch 2:" in out and "150 ok" in out
    logged = log(db, "result = 'ok'")
    assert len(logged) == 150 and {r[6] for r in logged} == {f"{ARN} (os user {getpass.getuser()})"}
    assert rows(db, "SELECT batches_done, ok, status FROM apply_runs") == [(2, 150, "ok")]


def test_failed_versions_are_reported_per_version_and_logged(estate):
    versions = web(4)
    db, report, settings = estate(versions)
    aws = StubClients()
    aws.listing("web", [(v, s, r) for _, _, v, s, r, _ in versions], ns="acme")
    names = [v for _, _, v, *_ in versions]
    aws.write("dispose_package_versions", "web", names, ns="acme",
              expected={"expectedStatus": "Published", "versionRevisions": {v: f"r{i}" for i, v in enumerate(names)}},
              ok={"1.0.0": {"revision": "x", "status": "Disposed"}, "1.0.1": {"revision": "y", "status": "Disposed"}},
              failed={"1.0.2": {"errorCode": "MISMATCHED_REVISION", "errorMessage": "revision moved"},
                      "1.0.3": {"errorCode": "MISMATCHED_STATUS"}})
    code, out = apply(settings, report, "dispose", clients=aws, execute=True, yes=True)
    aws.done()
    assert code == 1
    assert "failed corp/app npm acme/web@1.0.2: MISMATCHED_REVISION revision moved" in out
    assert [(r[0], r[2], r[3]) for r in log(db)] == [("1.0.0", "ok", None), ("1.0.1", "ok", None),
                                                     ("1.0.2", "failed", "MISMATCHED_REVISION"),
                                                     ("1.0.3", "failed", "MISMATCHED_STATUS")]
    result = read_table(report.with_name("cleanup.result.csv"))
    assert result.set_index("version").loc["1.0.2", "error_code"] == "MISMATCHED_REVISION"


def test_a_rerun_after_an_interruption_only_calls_for_the_remaining_versions(estate):
    versions = web(150)
    db, report, settings = estate(versions)
    revs = {v: r for _, _, v, _, r, _ in versions}
    first, rest = [v for _, _, v, *_ in versions[:100]], [v for _, _, v, *_ in versions[100:]]

    def expect(aws, names):
        aws.write("update_package_versions_status", "web", names, ns="acme", expected={
            "expectedStatus": "Published", "targetStatus": "Archived",
            "versionRevisions": {v: revs[v] for v in names}})

    aws = StubClients()
    aws.listing("web", [(v, "Published", revs[v]) for v in revs], ns="acme")
    expect(aws, first)
    expect(aws, rest)
    calls = []

    def killed_on_second_call(**_):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
    aws.ca.meta.events.register("provide-client-params.codeartifact.UpdatePackageVersionsStatus",
                                killed_on_second_call)
    with pytest.raises(KeyboardInterrupt):
        apply(settings, report, clients=aws, execute=True, yes=True)
    assert rows(db, "SELECT status, batches_done, ok FROM apply_runs") == [("interrupted", 1, 100)]

    again = StubClients()  # AWS now shows the first 100 archived
    again.listing("web", [(v, "Archived" if v in first else "Published", f"{revs[v]}-new" if v in first else revs[v])
                          for v in revs], ns="acme")
    expect(again, rest)
    code, out = apply(settings, report, clients=again, execute=True, yes=True)
    again.done()
    assert code == 0 and "50 ok" in out and "100 skipped" in out
    assert rows(db, "SELECT count(*) FROM apply_log WHERE result = 'ok'") == [(150,)]
    assert rows(db, "SELECT count(DISTINCT version) FROM apply_log WHERE result = 'skipped' "
                    "AND error_code = 'ALREADY_DONE'") == [(100,)]


def test_the_recheck_skips_downloaded_changed_protected_and_depended_on_rows(estate):
    versions = [(None, "lib", "1.0.0", "Published", "a", "INTERNAL"), (None, "lib", "1.1.0", "Published", "b", "INTERNAL"),
                (None, "lib", "1.3.0", "Published", "d", "INTERNAL"), (None, "secret-sdk", "1.0.0", "Published", "s", "INTERNAL"),
                (None, "dep", "1.0.0", "Published", "e", "INTERNAL")]
    app = [(None, "app", "2.0.0", "Published", "f", "INTERNAL")]  # kept, depends on dep ^1.0.0
    db, report, settings = estate(versions + app, report_versions=versions, protect=["npm/*/secret*"],
                                  events=[("lib", "1.0.0", T_REPORT + timedelta(hours=3), None)],
                                  deps=[("app", "2.0.0", "dep", "^1.0.0")])
    aws = StubClients()
    aws.listing("lib", [("1.0.0", "Published", "a"), ("1.1.0", "Published", "b2"), ("1.3.0", "Published", "d")])
    aws.write("update_package_versions_status", "lib", ["1.3.0"], expected={
        "expectedStatus": "Published", "targetStatus": "Unlisted", "versionRevisions": {"1.3.0": "d"}})
    code, out = apply(settings, report, "unlist", clients=aws, execute=True, yes=True)
    aws.done()
    assert code == 0
    msgs = {(r[7] or "").split(":")[0] for r in log(db) if r[2] == "skipped"}
    assert msgs == {"downloaded after the report", "revision changed", "protected by 'npm/*/secret*' in [cleanup]",
                    "depended on"}
    assert [r[0] for r in log(db, "result = 'ok'")] == ["1.3.0"]
    assert "revision changed: b2 now, b expected" in out
    assert "expected revision taken from the store" in log(db, "result = 'ok'")[0][7]


def test_a_download_under_a_clients_spelling_after_the_report_keeps_the_stored_version(estate):
    """CodeArtifact stores `zope-interface` (PyPI names PEP 503-normalized); pip may fetch `Zope.Interface`, and
    CloudTrail records that. The re-check counts it as a download of the stored version."""
    versions = [(None, "zope-interface", v, "Published", f"r{v}", "INTERNAL", "pypi") for v in ("1.0", "1.1")]
    db, report, settings = estate(versions, events=[("Zope.Interface", "1.0", T_REPORT + timedelta(hours=3), None,
                                                     "pypi")])
    aws = StubClients()
    aws.listing("zope-interface", [("1.0", "Published", "r1.0"), ("1.1", "Published", "r1.1")], fmt="pypi")
    aws.write("update_package_versions_status", "zope-interface", ["1.1"], fmt="pypi", expected={
        "expectedStatus": "Published", "targetStatus": "Archived", "versionRevisions": {"1.1": "r1.1"}})
    code, out = apply(settings, report, "archive", clients=aws, execute=True, yes=True)
    aws.done()
    assert code == 0
    assert [(r[0], r[2], r[7].split(":")[0] if r[2] == "skipped" else None) for r in log(db)] == [
        ("1.0", "skipped", "downloaded after the report"), ("1.1", "ok", None)]


def test_a_download_of_a_same_named_domains_copy_elsewhere_does_not_keep_this_one(estate):
    """Domain names are unique only within an account and Region: a download after the report of `corp`'s
    copy in another Region, or in another account, is not one of this copy (the report judged them apart)."""
    versions = [(None, "lib", v, "Published", f"r{v}", "INTERNAL", "npm") for v in ("1.0", "1.1")]
    db, report, settings = estate(versions)
    with writer(db) as con, store.load_transaction(con):
        for i, (acct, region) in enumerate([(ACCT, "eu-west-1"), ("222222222222", REGION)]):
            con.execute("INSERT INTO event_rows (event_id, event_at, event_name, account_id, region, domain, repository, "
                        "format, package, version, asset) VALUES (?, ?, 'ReadFromRepository', ?, ?, ?, ?, 'npm', 'lib', "
                        "'1.0', 'a.tgz')", [f"twin{i}", T_REPORT + timedelta(hours=3), acct, region, DOMAIN, REPO])
    aws = StubClients()
    aws.listing("lib", [("1.0", "Published", "r1.0"), ("1.1", "Published", "r1.1")])
    aws.write("update_package_versions_status", "lib", ["1.0", "1.1"], expected={
        "expectedStatus": "Published", "targetStatus": "Archived", "versionRevisions": {"1.0": "r1.0", "1.1": "r1.1"}})
    code, out = apply(settings, report, "archive", clients=aws, execute=True, yes=True)
    aws.done()
    assert code == 0
    assert [(r[0], r[2]) for r in log(db)] == [("1.0", "ok"), ("1.1", "ok")]


def test_staged_disposes_later_only_what_nobody_tried_to_fetch(estate):
    versions = web(3)
    db, report, settings = estate(versions)
    aws = StubClients()
    aws.listing("web", [(v, s, r) for _, _, v, s, r, _ in versions], ns="acme")
    aws.write("update_package_versions_status", "web", ["1.0.0", "1.0.1", "1.0.2"], ns="acme", expected={
        "expectedStatus": "Published", "targetStatus": "Archived",
        "versionRevisions": {"1.0.0": "r0", "1.0.1": "r1", "1.0.2": "r2"}})
    assert apply(settings, report, "staged", clients=aws, execute=True, yes=True)[0] == 0
    aws.done()
    code, out = apply(settings, report, "staged", clients=NoAws())  # too early: 30 days by default
    assert "disposed only after 30 d" in out

    archived_at = rows(db, "SELECT max(logged_at) FROM apply_log WHERE action = 'staged:archive'")[0][0]
    with writer(db) as con, store.load_transaction(con):  # a failed fetch of 1.0.1, and trail coverage
        for i, (ver, err) in enumerate([("1.0.1", "PackageVersionArchived"), ("1.0.2", None)]):
            con.execute("INSERT INTO event_rows (event_id, event_at, event_name, account_id, region, domain, repository, "
                        "format, namespace, package, version, error_code) VALUES (?, ?, 'ReadFromRepository', ?, ?, ?, "
                        "'other', 'npm', 'acme', 'web', ?, ?)",
                        [f"x{i}", archived_at + timedelta(minutes=5), ACCT, REGION, DOMAIN, ver, err])
    again = StubClients()
    again.listing("web", [(f"1.0.{i}", "Archived", f"1.0.{i}-new") for i in range(3)], ns="acme")
    again.write("dispose_package_versions", "web", ["1.0.0", "1.0.2"], ns="acme", expected={
        "expectedStatus": "Archived", "versionRevisions": {"1.0.0": "1.0.0-new", "1.0.2": "1.0.2-new"}})
    code, out = apply(settings, report, "staged", clients=again, execute=True, yes=True, min_archived_days=0)
    again.done()
    assert code == 0 and "requested 1 time(s) while archived" in out
    assert [(r[0], r[1], r[2]) for r in log(db, "run_id = (SELECT max(run_id) FROM apply_runs)")] == [
        ("1.0.0", "staged:dispose", "ok"), ("1.0.1", "staged:dispose", "skipped"), ("1.0.2", "staged:dispose", "ok")]


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_delete_passes_expected_status_only_and_hostile_names_reach_the_api_exactly(estate, fmt):
    ns, pkg, ver = HOSTILE["formula-plus"], EVIL, HOSTILE["formula-at"]
    versions = [(ns, pkg, ver, "Unlisted", "r1", "INTERNAL")]
    db, report, settings = estate(versions, fmt=fmt)
    if fmt == "csv":
        assert "'=HYPERLINK" in report.read_text()  # neutralized in the file, restored on reading
    aws = StubClients()
    aws.listing(pkg, [(ver, "Unlisted", "r1")], ns=ns)
    aws.write("delete_package_versions", pkg, [ver], ns=ns, expected={"expectedStatus": "Unlisted"})
    code, _ = apply(settings, report, "delete", clients=aws, execute=True, yes=True)
    aws.done()
    assert code == 0 and rows(db, "SELECT namespace, package, version, result FROM apply_log") == [
        (ns, pkg, ver, "ok")]


def test_access_denied_names_the_iam_action_and_the_policy_file(estate):
    versions = web(1)
    db, report, settings = estate(versions)
    aws = StubClients()
    aws.listing("web", [("1.0.0", "Published", "r0")], ns="acme")
    aws.stub.add_client_error("dispose_package_versions", "AccessDeniedException", "not authorized", 403)
    with pytest.raises(AwsAccessError) as e:
        apply(settings, report, "dispose", clients=aws, execute=True, yes=True)
    assert "codeartifact:DisposePackageVersions" in str(e.value) and "iam/caa-cleanup.json" in str(e.value)
    assert rows(db, "SELECT result, error_code FROM apply_log") == [("failed", "AccessDeniedException")]
    assert rows(db, "SELECT status FROM apply_runs") == [("failed",)]


def test_each_domain_must_be_typed_and_a_stray_enter_deletes_nothing(estate):
    db, report, settings = estate(web(2))
    aws = StubClients()
    aws.listing("web", [("1.0.0", "Published", "r0"), ("1.0.1", "Published", "r1")], ns="acme")
    code, out = apply(settings, report, "delete", clients=aws, execute=True, ask=lambda text: "")
    aws.done()  # the listing, and no delete call
    assert code == 0 and "corp: not confirmed, nothing done there" in out
    assert {r[2] for r in log(db)} == {"skipped"}
    aws = StubClients()
    aws.listing("web", [("1.0.0", "Published", "r0"), ("1.0.1", "Published", "r1")], ns="acme")
    aws.write("delete_package_versions", "web", ["1.0.0", "1.0.1"], ns="acme", expected={"expectedStatus": "Published"})
    prompts = []
    code, out = apply(settings, report, "delete", clients=aws, execute=True,
                      ask=lambda text: prompts.append(text) or " corp ")
    aws.done()
    assert code == 0 and prompts == [f"Type the domain name to delete 2 versions in {ACCT} {REGION} corp "
                                     "(anything else skips this domain)"]
    with pytest.raises(ConfigError, match="not an interactive terminal"):
        apply(settings, report, "delete", clients=StubClients(caller=False), execute=True)


def test_unapproved_rows_and_ambiguous_regions_are_refused(estate, tmp_path):
    db, report, settings = estate(web(2), approve="no")
    with pytest.raises(DataError, match="no approved rows"):
        apply(settings, report, clients=NoAws())
    with pytest.raises(ConfigError, match="--all"):
        apply(settings, report, clients=NoAws(), select_all=True)
    db2 = tmp_path / "two" / "caa.duckdb"
    build_store(db2, web(1), regions=("us-east-1", "eu-west-1"))
    with pytest.raises(DataError, match="several regions"):
        apply(make_settings(db=db2), write_report(tmp_path / "two.csv", web(1)), clients=NoAws())


def test_cli_all_without_yes_is_one_line_and_dry_run_needs_no_credentials(estate, tmp_path):
    db, report, _ = estate(web(2))
    config = tmp_path / "empty.toml"
    config.write_text("")
    env = {**os.environ, "CAA_CONFIG": str(config), "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    run = [sys.executable, "-m", "cli", "apply", str(report), "--action", "dispose", "--db", str(db)]
    res = subprocess.run([*run, "--all"], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "--all" in res.stderr and "--yes" in res.stderr
    res = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "2 versions" in res.stdout and "dry run" in res.stdout
    assert utc_now() > T_REPORT


def test_apply_calls_exactly_the_actions_its_policies_grant(estate):
    """Every AWS operation apply makes (recorded at botocore's before-parameter-build) is granted by
    iam/caa-cleanup.json or iam/caa-collect.json, and caa-cleanup.json grants nothing apply does not call."""
    import json

    from core.aws import iam_action

    calls: set[str] = set()

    def record(model, **_):
        calls.add(iam_action(model.service_model.endpoint_prefix, model.name))

    runs = (("archive", "update_package_versions_status", lambda v: {
                "expectedStatus": "Published", "targetStatus": "Archived", "versionRevisions": {v[2]: v[4]}}),
            ("dispose", "dispose_package_versions", lambda v: {
                "expectedStatus": "Published", "versionRevisions": {v[2]: v[4]}}),
            ("delete", "delete_package_versions", lambda v: {"expectedStatus": "Published"}))
    for action, op, expected in runs:
        versions = web(1)
        _, report, settings = estate(versions)
        aws = StubClients()
        for client in (aws.ca, aws.sts):
            client.meta.events.register("before-parameter-build.*.*", record)
        aws.listing("web", [(v, s, r) for _, _, v, s, r, _ in versions], ns="acme")
        aws.write(op, "web", [versions[0][2]], ns="acme", expected=expected(versions[0]))
        code, _ = apply(settings, report, action, clients=aws, execute=True, yes=True)
        aws.done()
        assert code == 0
    root = Path(__file__).resolve().parents[2] / "iam"

    def granted(name: str) -> set[str]:
        doc = json.loads((root / name).read_text())
        return {a for st in doc["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}

    cleanup, collect_policy = granted("caa-cleanup.json"), granted("caa-collect.json")
    assert not any("*" in a for a in cleanup)
    needed = calls - {"sts:GetCallerIdentity"}  # needs no permission
    assert needed <= cleanup | collect_policy
    assert cleanup == needed - collect_policy  # exactly the extra actions apply needs


# -- the re-check judges by the report's own policy (issue: apply did not re-check the policy) --------------

DEFAULT_POLICY = ('{"keep_latest":3,"keep_latest_per_major":1,"min_age_days":90,"pins":[],"protect":[],'
                  '"statuses":["Published","Unlisted","Archived"],"unused_days":180}')


def test_a_row_added_by_hand_for_a_version_in_use_is_skipped_with_the_rule_that_keeps_it(estate, tmp_path):
    versions = web(5)  # 1.0.0 .. 1.0.4; the report's policy keeps the 3 newest
    in_use = [("web", "1.0.4", T_REPORT - timedelta(days=9, minutes=i), None) for i in range(52)]
    db, _, settings = estate(versions, events=in_use)
    report = write_report(tmp_path / "by-hand.csv", versions, policy=DEFAULT_POLICY)
    code, out = apply(settings, report, clients=NoAws())
    assert code == 0
    result = read_table(report.with_name("by-hand.result.csv")).set_index("version")
    assert result.loc[["1.0.0", "1.0.1"], "result"].tolist() == ["planned", "planned"]
    for v in ("1.0.2", "1.0.3", "1.0.4"):
        assert result.loc[v, "result"] == "skipped" and "no longer a candidate under the report's policy" in \
            result.loc[v, "message"], result.loc[v, "message"]
    assert "downloaded 9 days ago" in result.loc["1.0.4", "message"] or "newest" in result.loc["1.0.4", "message"]
    assert f"{ACCT} {REGION} {DOMAIN}: 2 versions" in out


def test_duplicates_count_once_and_bytes_come_from_the_store_not_the_file(estate, tmp_path):
    import pandas as pd

    versions = web(4)
    db, _, settings = estate(versions)
    with writer(db) as con, store.load_transaction(con):  # 1.0.0 and 1.0.1 share one 2 GiB asset
        for v, sha, size in (("1.0.0", "shared", 2 * 1024**3), ("1.0.1", "shared", 2 * 1024**3),
                             ("1.0.2", "own2", 1024**3), ("1.0.3", "own3", 1024**3)):
            con.execute("INSERT INTO assets_rows VALUES (?, ?, ?, ?, 'npm', 'acme', 'web', ?, 'a.tgz', ?, ?)",
                        [ACCT, REGION, DOMAIN, REPO, v, size, sha])
    report = write_report(tmp_path / "forged.csv", [*versions[:2], versions[0], versions[0]])
    df = read_table(report)
    df["reclaimable_bytes"] = 999999999999999  # shown as 931,322.59 GiB when trusted
    df.to_csv(report, index=False)
    code, out = apply(settings, report, clients=NoAws())
    assert code == 0
    result = read_table(report.with_name("forged.result.csv"))
    assert result["result"].tolist() == ["planned", "planned", "skipped", "skipped"]
    assert result["message"].iloc[2:].tolist() == ["duplicate of row 1", "duplicate of row 1"]
    # two versions, freeing their shared asset once (2 GiB at $0.05/GB-month); nothing from the file
    assert f"{DOMAIN}: 2 versions; frees nothing yet (2.00 GiB, $0.10/month once disposed)" in out, out
    assert "931,322" not in out
    assert pd.Series(rows(db, "SELECT result FROM apply_log")).value_counts().to_dict() == {("planned",): 2,
                                                                                            ("skipped",): 2}


def test_a_row_whose_names_a_spreadsheet_changed_is_skipped_not_acted_on_under_its_new_name(estate, tmp_path):
    """A spreadsheet that opens the CSV with General columns saves version 1.10 as 1.1: here 1.1 exists and is
    a candidate too, so without row_key caa apply would have planned 1.1, a version nobody approved."""
    versions = [(None, "lib", v, "Published", f"r{v}", "INTERNAL") for v in ("1.1", "1.10", "2.0.0", "3.0.0")]
    db, report, settings = estate(versions, report_versions=versions[1:3])
    df = read_table(report)
    df["row_key"] = [C.row_key(*n) for n in df[C.ROW_NAMES].itertuples(index=False, name=None)]
    write_table(df, report)
    text = report.read_text(encoding="utf-8")
    assert text.count(",1.10,") == 1
    report.write_text(text.replace(",1.10,", ",1.1,"), encoding="utf-8")  # what the spreadsheet saved
    code, out = apply(settings, report, "unlist", clients=NoAws())
    assert code == 0
    assert [(r[0], r[2], r[3]) for r in log(db)] == [("1.1", "skipped", "CHANGED"), ("2.0.0", "planned", None)]
    assert "skipped row 1 corp/app npm lib@1.1: its names are not the ones the report wrote" in out
    assert f"{ACCT} {REGION} {DOMAIN}: 1 versions" in out


def test_a_report_without_its_policy_is_refused(estate, tmp_path):
    db, report, settings = estate(web(2))
    df = read_table(report).drop(columns="policy")
    df.to_csv(report, index=False)
    with pytest.raises(DataError, match="does not record the cleanup policy") as e:
        apply(settings, report, clients=NoAws())
    assert "caa report cleanup" in str(e.value)
    assert rows(db, "SELECT count(*) FROM apply_log") == [(0,)]
