"""`caa alerts send`: a download spike and an auth burst in a hand-built store go to SNS (moto, read back
through a subscribed SQS queue) and to a Slack-compatible webhook (a real HTTP server on 127.0.0.1) once;
a second run sends nothing; a spike that grows re-alerts once. The webhook URL (a credential) never
reaches a log line or the terminal.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core import store
from delivery.alerts import send_alerts
from tests.helpers import make_settings, rows, writer

HOSTILE = "<img src=x onerror=alert(1)>"
A = "111111111111"
BOT, INTRUDER = f"arn:aws:iam::{A}:user/leaky-bot", f"arn:aws:iam::{A}:user/intruder"
TOKEN = "T0KEN-b7c1d9e2-NEVER-LOG"
COLS = ("event_id, event_at, event_name, account_id, region, domain, domain_owner, repository, format, package, "
        "version, asset, principal_arn, source_ip, user_agent, error_code")


def _insert(con, prefix: str, first: str, n: int, step_s: int, principal: str, ip: str, agent: str,
            error: str | None = None, name: str = "ReadFromRepository") -> None:
    con.execute(f"INSERT INTO event_rows ({COLS}) SELECT $p || i, TIMESTAMPTZ '{first}+00' + i * $s * INTERVAL 1 SECOND, "
                "$name, $a, 'us-east-1', 'acme', $a, 'shared', 'npm', $pkg, '1.0.0', 'x.tgz', $who, $ip, $ua, $err "
                "FROM range($n) t(i)", {"p": prefix, "s": step_s, "name": name, "a": A, "pkg": HOSTILE, "who": principal,
                                        "ip": ip, "ua": agent, "err": error, "n": n})


def build_spike_store(db: Path) -> None:
    """May 1 - June 14 2026: HOSTILE is downloaded twice a day (08:00 and 16:00, two CI principals); on June
    10 leaky-bot fetches it 60 times between 10:00 and 11:00 (a download spike); on June 12 intruder is
    denied 30 times in half an hour (an auth burst)."""
    with writer(db) as con:
        _insert(con, "am", "2026-05-01 08:00:00", 45, 86_400, f"arn:aws:iam::{A}:user/ci-1", "192.0.2.1", "npm/10")
        _insert(con, "pm", "2026-05-01 16:00:00", 45, 86_400, f"arn:aws:iam::{A}:user/ci-2", "192.0.2.2", "npm/10")
        _insert(con, "spike", "2026-06-10 10:00:00", 60, 60, BOT, "203.0.113.9", "curl/8.5")
        _insert(con, "denied", "2026-06-12 03:00:00", 30, 60, INTRUDER, "198.51.100.7", "aws-cli/2", "AccessDenied")
        _insert(con, "last", "2026-06-14 23:30:00", 1, 1, f"arn:aws:iam::{A}:user/ci-1", "192.0.2.1", "npm/10")
        store.bump_version(con)


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's hook name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append({"path": self.path, "type": self.headers["Content-Type"], "json": json.loads(body)})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):  # the test server's access log would print the URL (with its token)
        pass


@pytest.fixture
def webhook():
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/{TOKEN}", Hook.received
    server.shutdown()


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield


def _sqs_messages(sqs, url: str) -> list[dict]:
    out = []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_each_spike_alerts_once_and_a_grown_spike_realerts_once(tmp_path, webhook, aws, monkeypatch, caplog,
                                                                 capsys):
    import boto3

    url, posts = webhook
    db = tmp_path / "caa.duckdb"
    build_spike_store(db)
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="caa-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="caa-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("CAA_TEST_WEBHOOK", url)
    settings = make_settings(db=db, alerts={"sns_topic_arn": topic, "webhook_url_env": "CAA_TEST_WEBHOOK",
                                            "since_days": 30}, email={"dashboard_url": "https://caa.example.com"})
    caplog.set_level(logging.DEBUG)

    preview = send_alerts(settings, dry_run=True)
    assert len(preview) == 3 and "2 alerts of 2 spikes" in preview[-1] and not posts

    first = send_alerts(settings)
    assert first[-1].startswith("2 alerts sent for 2 spikes")
    assert len(posts) == 2 and all(p["type"] == "application/json" for p in posts)
    by_kind = {("auth" if "Auth failures" in p["json"]["text"] else "download"): p["json"] for p in posts}
    dl, auth = by_kind["download"], by_kind["auth"]
    assert {b["type"] for b in dl["blocks"]} == {"header", "section"}
    # Slack mrkdwn: the hostile name arrives as entities, never as a tag or a link
    assert "&lt;img src=x onerror=alert(1)&gt;" in dl["text"] and "<img" not in dl["text"]
    assert HOSTILE in dl["blocks"][0]["text"]["text"]  # plain_text header: shown as typed, not parsed
    for driver in ("leaky-bot (", "203.0.113.9 (", "curl/8.5 (", "Cost: $0.000"):
        assert driver in dl["text"]
    assert "intruder" in auth["text"] and "198.51.100.7" in auth["text"] and "access_denied" in auth["text"]
    published = _sqs_messages(sqs, queue)
    assert sorted(m["Subject"][:22] for m in published) == ["[caa] Auth failures (a", "[caa] Download spike o"]
    assert all("Principals:" in m["Message"] and "https://caa.example.com" in m["Message"] for m in published)
    state = rows(db, "SELECT kind, channels, alerts_sent FROM alert_state ORDER BY kind")
    assert state == [("auth", ["sns", "webhook"], 1), ("download", ["sns", "webhook"], 1)]

    second = send_alerts(settings)
    assert second == ["0 alerts sent for 2 spikes since 2026-05-15"]
    assert len(posts) == 2 and _sqs_messages(sqs, queue) == []

    # the spike grows: leaky-bot carries on for two more hours
    with writer(db) as con:
        _insert(con, "more", "2026-06-10 11:00:00", 120, 60, BOT, "203.0.113.9", "curl/8.5")
        store.bump_version(con)
    third = send_alerts(settings)
    assert third[-1].startswith("1 alerts sent") and "grown" in third[0]
    assert len(posts) == 3 and "[caa] grown: Download spike" in posts[-1]["json"]["text"]
    assert "180 excess downloads (was 60 at the last alert)" in posts[-1]["json"]["text"]
    assert [m["Subject"][:19] for m in _sqs_messages(sqs, queue)] == ["[caa] grown: Downlo"]
    assert send_alerts(settings)[0].startswith("0 alerts sent") and len(posts) == 3
    assert rows(db, "SELECT alerts_sent FROM alert_state WHERE kind = 'download'") == [(2,)]

    out = capsys.readouterr()
    assert TOKEN not in caplog.text + out.out + out.err + "".join(str(r.args) for r in caplog.records)


def test_a_failing_channel_is_retried_alone_and_no_channel_is_a_one_line_error(tmp_path, webhook, aws,
                                                                              monkeypatch):
    import boto3

    from core.errors import CaaError

    url, posts = webhook
    db = tmp_path / "caa.duckdb"
    build_spike_store(db)
    topic = boto3.client("sns").create_topic(Name="caa-alerts")["TopicArn"]
    monkeypatch.setenv("CAA_TEST_WEBHOOK", url.replace("127.0.0.1:", "127.0.0.1:1") + "x")  # nobody listens
    settings = make_settings(db=db, alerts={"sns_topic_arn": topic, "webhook_url_env": "CAA_TEST_WEBHOOK",
                                            "since_days": 30})
    with pytest.raises(CaaError) as err:
        send_alerts(settings)
    assert "cannot reach the webhook" in str(err.value) and TOKEN not in str(err.value)
    assert rows(db, "SELECT channels FROM alert_state") == [(["sns"],), (["sns"],)]
    monkeypatch.setenv("CAA_TEST_WEBHOOK", url)
    assert send_alerts(settings)[-1].startswith("2 alerts sent") and len(posts) == 2  # the webhook only
    assert rows(db, "SELECT DISTINCT channels FROM alert_state") == [(["sns", "webhook"],)]

    config = tmp_path / "none.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "CAA_WEBHOOK_URL"}
    res = subprocess.run([sys.executable, "-m", "cli", "alerts", "send", "--db", str(db)], capture_output=True,
                         text=True, env={**env, "CAA_CONFIG": str(config)}, timeout=120)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no alert channel is configured" in res.stderr
