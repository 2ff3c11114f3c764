"""`caa email send` end to end: a real SMTP server (aiosmtpd on 127.0.0.1, AUTH over plain and STARTTLS
with a self-signed certificate), Amazon SES on moto, the .eml outbox, and the chart's failure mode.

The numbers in the received mail are checked against analytics computed directly (costs.cost_report,
forecast.month_end_projection) on the demo estate; a hand-built store carries a hostile package name.
"""

from __future__ import annotations

import datetime as dt
import email
import html
import ipaddress
import os
import re
import socket
import subprocess
import sys
from email import policy
from pathlib import Path

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from analytics import costs, forecast
from core import store
from delivery import mail
from delivery.notify import deliver_cost_emails
from tests.helpers import make_settings, writer

HOSTILE = "<img src=x onerror=alert(1)>"
USER, PASSWORD = "caa-mailer", "pw-9f8e7d6c-NEVER-LOG"
A = "111111111111"
GIB = 1024**3


# ---------------------------------------------------------------- a real SMTP server

class Inbox:
    def __init__(self):
        self.received: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append({"rcpt": list(envelope.rcpt_tos), "auth": session.authenticated,
                              "tls": session.ssl is not None,
                              "msg": email.message_from_bytes(envelope.content, policy=policy.default)})
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def smtp_plain():
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticator, auth_require_tls=False)
    ctl.start()
    yield inbox, port
    ctl.stop()


@pytest.fixture
def smtp_starttls(tmp_path, monkeypatch):
    import ssl

    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts exactly this certificate
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticator, tls_context=ctx,
                     require_starttls=True, auth_require_tls=True)
    ctl.start()
    yield inbox, port
    ctl.stop()


# ---------------------------------------------------------------- a small store with a hostile name

def build_hostile_store(db: Path) -> None:
    """June 2026 (last full day June 20) in one domain: repository "shared" (owner tag alice@) holds the
    package HOSTILE, downloaded 20,000 times in June and 2,000 times in May; its three oldest of six
    versions are idle (cleanup candidates). Repository "other" (owner tag bob@) holds lodash."""
    t = lambda *a: dt.datetime(*a, tzinfo=dt.UTC)  # noqa: E731
    with writer(db) as con:
        day = dt.date(2026, 4, 1)
        while day <= dt.date(2026, 6, 20):
            con.execute("INSERT INTO storage_snapshots VALUES (?, ?, 'us-east-1', 'acme', ?, ?)",
                        [day, A, 10 * GIB, t(day.year, day.month, day.day, 2)])
            day += dt.timedelta(days=1)
        for repo, owner in (("shared", "alice@example.com"), ("other", "bob@example.com")):
            con.execute("INSERT INTO repositories (account_id, region, domain, repository, tags, last_seen_at) "
                        "VALUES (?, 'us-east-1', 'acme', ?, MAP {'owner': ?}, ?)", [A, repo, owner, t(2026, 6, 20)])
        for repo, fmt, pkg, size in (("shared", "npm", HOSTILE, GIB), ("other", "npm", "lodash", GIB // 2)):
            for minor in range(6):
                version = f"1.{minor}.0"
                con.execute("INSERT INTO package_versions (account_id, region, domain, repository, format, package, "
                            "version, status, origin_type, published_at, first_seen_at, last_seen_at) VALUES "
                            "(?, 'us-east-1', 'acme', ?, ?, ?, ?, 'Published', 'INTERNAL', ?, ?, ?)",
                            [A, repo, fmt, pkg, version, t(2025, 1, 1 + minor), t(2025, 11, 1), t(2026, 6, 20)])
                con.execute("INSERT INTO assets_rows VALUES (?, 'us-east-1', 'acme', ?, ?, NULL, ?, ?, ?, ?, ?)",
                            [A, repo, fmt, pkg, version, f"{version}.tgz", size, f"sha-{repo}-{version}"])
        cols = ("event_id, event_at, event_name, account_id, region, domain, domain_owner, repository, format, "
                "package, version, asset, principal_arn, source_ip, user_agent")
        for prefix, first, n, step in (("may", "2026-05-01", 2_000, 600), ("jun", "2026-06-01", 20_000, 80)):
            con.execute(f"INSERT INTO event_rows ({cols}) SELECT $p || i, TIMESTAMPTZ '{first} 00:00:00+00' + "
                        "i * $step * INTERVAL 1 SECOND, 'ReadFromRepository', $a, 'us-east-1', 'acme', $a, 'shared', "
                        "'npm', $pkg, '1.5.0', '1.5.0.tgz', 'arn:aws:iam::111111111111:user/ci', '192.0.2.1', "
                        "'npm/10' FROM range($n) t(i)", {"p": prefix, "step": step, "a": A, "pkg": HOSTILE, "n": n})
        con.execute(f"INSERT INTO event_rows ({cols}) VALUES ('old', ?, 'GetAuthorizationToken', ?, 'us-east-1', 'acme', "
                    "?, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), ('last', ?, 'ReadFromRepository', ?, "
                    "'us-east-1', 'acme', ?, 'other', 'npm', 'lodash', '1.5.0', '1.5.0.tgz', NULL, NULL, NULL)",
                    [t(2025, 11, 1), A, A, t(2026, 6, 20, 23, 30), A, A])
        store.bump_version(con)


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("hostile") / "caa.duckdb"
    build_hostile_store(db)
    return db


def _parts(msg) -> dict:
    """text, html, the image/png parts and the structure of a digest."""
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = msg.get_payload()
    assert plain.get_content_type() == "text/plain" and related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    return {"text": plain.get_content().replace("\r\n", "\n"), "html": html_part.get_content().replace("\r\n", "\n"),
            "images": images}


def _assert_inline_chart(parts: dict) -> None:
    (img,) = parts["images"]
    assert img.get_content_type() == "image/png" and img.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    cid = img["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in parts["html"]


# ---------------------------------------------------------------- the demo estate over SMTP AUTH

OWNERS = {"apps@example.com": ["app-*", "web-*"], "data@example.com": ["data-*", "ml-*"]}


def test_digest_numbers_chart_and_owner_split_over_smtp_auth(demo_store, smtp_plain, monkeypatch):
    inbox, port = smtp_plain
    db, _ = demo_store(11, 20_000)
    monkeypatch.setenv("CAA_SMTP_USER", USER)
    monkeypatch.setenv("CAA_SMTP_PASSWORD", PASSWORD)
    settings = make_settings(db=db, email={"smtp_host": "127.0.0.1", "smtp_port": port, "starttls": False,
                                           "to": ["all@example.com"], "owners": OWNERS,
                                           "dashboard_url": "https://caa.example.com/"},
                             alerts={"since_days": 400})
    lines = deliver_cost_emails(settings)
    assert len(lines) == 3 and all(line.startswith("sent to ") for line in lines)
    got = {m["rcpt"][0]: m for m in inbox.received}
    assert set(got) == {"all@example.com", "apps@example.com", "data@example.com"}
    assert all(m["auth"] for m in got.values())

    # analytics computed directly
    with store.open_reader(db) as con:
        since, until = costs.month_to_date(con)
        last_end = since - dt.timedelta(days=1)
        mtd = (costs.cost_report(con, settings, since, until, by="repository") if since <= until
               else pd.DataFrame(columns=["domain", "repository", "cost_usd"]))
        last = costs.cost_report(con, settings, last_end.replace(day=1), last_end, by="repository")
        fc = forecast.forecast(con, settings, horizon_months=0, backtest=False)
    projected = fc.by_domain.set_index("domain")["expected_usd"]
    total = fc.monthly[fc.monthly["kind"] == "total"].iloc[0]
    assert projected.sum() == pytest.approx(total["expected_usd"], rel=1e-6)  # the domains add up to the estate
    assert (projected > 0).all()  # every domain with storage has a projection, also on the 1st

    def expected_rows(repos: set[str] | None) -> dict[str, tuple[str, str, str]]:
        m = mtd if repos is None else mtd[mtd["repository"].isin(repos)]
        lm = last if repos is None else last[last["repository"].isin(repos)]
        a, b = m.groupby("domain")["cost_usd"].sum(), lm.groupby("domain")["cost_usd"].sum()
        both = pd.concat([mtd, last]).groupby("domain")["cost_usd"].sum()
        mine = pd.concat([m, lm]).groupby("domain")["cost_usd"].sum()
        out = {}
        for d in projected.index if repos is None else mine.index:
            p = projected[d] * (1.0 if repos is None else mine[d] / both[d])
            if a.get(d, 0.0) or p or b.get(d, 0.0):
                out[d] = (mail.usd(a.get(d, 0.0)), mail.usd(p), mail.usd(b.get(d, 0.0)))
        return out

    def table_rows(text: str) -> dict[str, tuple[str, str, str]]:
        block = text.split("Cost per domain\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
        return {r.split()[2]: tuple(r.split()[3:6]) for r in block}

    full = _parts(got["all@example.com"]["msg"])
    assert table_rows(full["text"]) == expected_rows(None)
    for domain, (m, p, lm) in expected_rows(None).items():
        assert re.search(rf"<td[^>]*>{re.escape(domain)}</td><td[^>]*>{re.escape(m)}</td><td[^>]*>"
                         rf"{re.escape(p)}</td><td[^>]*>{re.escape(lm)}</td>", full["html"])
    subject = got["all@example.com"]["msg"]["Subject"]
    if costs.early_in_month(since, until):  # the 1st and 2nd: last month's final cost is the headline
        assert f"{last_end:%B %Y}: {mail.usd(last['cost_usd'].sum())} final; {since:%B} projected " \
               f"{mail.usd(projected.sum())}" in subject, subject
    else:
        assert f"{mail.usd(mtd['cost_usd'].sum())} to date, {mail.usd(projected.sum())} projected" in subject, subject
    assert all("-" not in cells for cells in table_rows(full["text"]).values())  # no cell left unknown
    _assert_inline_chart(full)
    assert 'href="https://caa.example.com/"' in full["html"]

    owned = {"apps@example.com": {"app-releases", "web-frontend"},
             "data@example.com": {"data-pipelines", "ml-models"}}
    pairs = set(pd.concat([mtd, last])[["domain", "repository"]].dropna().itertuples(index=False, name=None))
    for owner, repos in owned.items():
        parts = _parts(got[owner]["msg"])
        _assert_inline_chart(parts)
        assert table_rows(parts["text"]) == expected_rows(repos)
        named = {r for d, r in pairs if f"{d}/{r} " in parts["text"]}
        assert named and named <= repos, named  # movers, savings and spikes name no one else's repositories
        assert "?" + "&amp;".join(f"repositories={r}" for r in sorted(repos)) in parts["html"]  # escaped &

    # each owner's open spikes are in their repositories only, and include every one of the full digest's
    # (which lists the top ones of all repositories) that is in them
    def spike_rows(text: str) -> set[str]:
        block = text.split("Open spikes", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
        return {" ".join(r.split()) for r in block if r.strip()}  # (column widths differ between e-mails)

    every = spike_rows(full["text"])
    shared = 0
    for owner, repos in owned.items():
        theirs = spike_rows(_parts(got[owner]["msg"])["text"])
        assert all(any(f"/{repo} " in r for repo in repos) for r in theirs), (owner, theirs)
        assert {r for r in every if any(f"/{repo} " in r for repo in repos)} <= theirs
        shared += len(theirs)
    assert shared > 0  # the demo's injected spikes include some in the owners' repositories


# ---------------------------------------------------------------- STARTTLS + a secret from Secrets Manager

def test_hostile_name_arrives_escaped_over_starttls_and_the_secret_is_never_logged(
        hostile_db, smtp_starttls, monkeypatch, caplog, capsys):
    import logging

    import boto3
    from moto import mock_aws

    inbox, port = smtp_starttls
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CAA_SMTP_USER", raising=False)
    monkeypatch.delenv("CAA_SMTP_PASSWORD", raising=False)
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="caa/smtp", SecretString=f'{{"username": "{USER}", "password": "{PASSWORD}"}}')["ARN"]
        caplog.clear()
        caplog.set_level(logging.DEBUG)  # from here on: everything caa, botocore, kaleido and smtplib log
        settings = make_settings(db=hostile_db, prices={"free_requests_per_month": 0},
                                 email={"smtp_host": "127.0.0.1", "smtp_port": port, "starttls": True,
                                        "to": ["all@example.com"], "smtp_secret_arn": arn})
        print("\n".join(deliver_cost_emails(settings)))
    got = {m["rcpt"][0]: m for m in inbox.received}
    assert set(got) == {"all@example.com", "alice@example.com", "bob@example.com"}  # owners from the tag
    assert all(m["tls"] and m["auth"] for m in got.values())
    for who in ("all@example.com", "alice@example.com"):
        parts = _parts(got[who]["msg"])
        assert html.escape(HOSTILE) in parts["html"]  # in movers and cleanup savings
        assert "<img src=x" not in parts["html"] and "onerror=alert(1)>" not in parts["html"]
        assert parts["html"].count("<img ") == 1  # only the chart
        assert HOSTILE in parts["text"]  # plain text carries it as typed
    assert HOSTILE not in _parts(got["bob@example.com"]["msg"])["text"]  # bob's slice is lodash only
    out = capsys.readouterr()
    seen = caplog.text + out.out + out.err + "".join(str(r.args) for r in caplog.records)
    assert PASSWORD not in seen and "sent to all@example.com" in out.out


# ---------------------------------------------------------------- SES on moto

def test_ses_transport_sends_the_raw_multipart_message(hostile_db, monkeypatch):
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        boto3.client("ses").verify_email_identity(EmailAddress="caa@example.com")
        settings = make_settings(db=hostile_db, prices={"free_requests_per_month": 0},
                                 email={"transport": "ses", "from_addr": "caa@example.com", "to": ["all@example.com"]})
        lines = deliver_cost_emails(settings, to=["finops@example.com"])
        sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
        assert lines == [line for line in lines if "via SES" in line] and len(sent) == 1
        msg = email.message_from_string(sent[0].raw_data, policy=policy.default)
    assert msg["To"] == "finops@example.com" and msg["From"] == "caa@example.com"
    _assert_inline_chart(_parts(msg))


# ---------------------------------------------------------------- CLI: dry run, and no browser

def _caa(*args: str, db: Path, **env: str) -> subprocess.CompletedProcess:
    config = db.with_name("mail-caa.toml")
    config.write_text('[email]\nto = ["all@example.com"]\n[prices]\nfree_requests_per_month = 0\n')
    return subprocess.run([sys.executable, "-m", "cli", *args, "--db", str(db)], capture_output=True, text=True,
                          env={**os.environ, "CAA_CONFIG": str(config), **env}, timeout=300)


def test_dry_run_writes_eml_files_and_a_missing_browser_is_a_one_line_error(hostile_db, tmp_path):
    res = _caa("email", "send", "--dry-run", "--out", str(tmp_path / "outbox"), db=hostile_db)
    assert res.returncode == 0, res.stderr
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 3 and all(f"wrote {f}" in res.stdout for f in files)
    _assert_inline_chart(_parts(email.message_from_bytes(files[0].read_bytes(), policy=policy.default)))

    res = _caa("email", "send", "--dry-run", "--out", str(tmp_path / "none"), db=hostile_db,
               BROWSER_PATH="/nonexistent/chromium")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "cannot render the cost chart" in line and "apt-get install -y chromium" in line
    assert not (tmp_path / "none").exists()  # no mail without its chart

    (tmp_path / "a-file").write_text("kept")  # --out naming a file: was an internal error (FileExistsError)
    res = _caa("email", "send", "--dry-run", "--out", str(tmp_path / "a-file"), db=hostile_db)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert f"cannot write the e-mails to {tmp_path / 'a-file'}: it is a file" in line and "--out" in line, line
    assert (tmp_path / "a-file").read_text() == "kept"
