"""Transports: SMTP (STARTTLS, AUTH), Amazon SES (send_raw_email), the .eml outbox, SNS publish and a
Slack-compatible webhook.

Reads: settings.email / settings.alerts, the SMTP login and the webhook URL through delivery.secrets.
Writes: .eml files under the outbox directory (dry runs); nothing else on disk.

Secrets never reach a log line or an exception message: errors name the host, the setting or the
environment variable, and every library exception is replaced (`from None`) by a one-line CaaError.
"""

from __future__ import annotations

import errno
import json
import re
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from core.aws import Scope
from core.clock import utc_now
from core.errors import CaaError, OutputError, output_error
from core.settings import Settings
from delivery.secrets import smtp_login

TIMEOUT_S = 30


def outbox_dir(settings: Settings, out: Path | None) -> Path:
    """--out, else data/outbox next to the store (data/outbox/ for the default store)."""
    return Path(out) if out else Path(settings.db).parent / "outbox"


def write_outbox(messages: list[EmailMessage], folder: Path, prefix: str = "cost") -> list[Path]:
    """Each message as <folder>/<prefix>-<UTC time>-<n>-<first recipient>.eml (bytes as they would be sent)."""
    stamp = f"{utc_now():%Y%m%dT%H%M%SZ}"
    paths = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for i, msg in enumerate(messages, 1):
            who = re.sub(r"[^A-Za-z0-9@._-]+", "_", (msg["To"] or "nobody").split(",")[0].strip())[:80]
            path = folder / f"{prefix}-{stamp}-{i:02d}-{who}.eml"
            path.write_bytes(msg.as_bytes())
            paths.append(path)
    except OSError as e:  # --out is a file, a read-only folder, a full disk
        if e.errno in (errno.EEXIST, errno.ENOTDIR) and folder.is_file():
            raise OutputError(f"cannot write the e-mails to {folder}: it is a file", where="--out",
                              fix="--out is the folder the .eml files go in: pass a folder's path") from None
        raise output_error(f"the e-mails to {folder}", e) from None
    return paths


def send_email(messages: list[EmailMessage], settings: Settings, clients: Any = None) -> None:
    """Send through settings.email.transport: 'smtp' or 'ses'."""
    if not messages:
        return
    if settings.email.transport == "ses":
        send_ses(messages, settings, clients)
    else:
        send_smtp(messages, settings, clients)


def send_smtp(messages: list[EmailMessage], settings: Settings, clients: Any = None) -> None:
    e = settings.email
    where = f"SMTP {e.smtp_host}:{e.smtp_port}"
    login = smtp_login(settings, clients)
    try:
        with smtplib.SMTP(e.smtp_host, e.smtp_port, timeout=TIMEOUT_S) as smtp:
            smtp.ehlo()
            if e.starttls:
                if not smtp.has_extn("starttls"):
                    raise CaaError("the SMTP server does not offer STARTTLS", where=where,
                                   fix="use a server that does, or set email.starttls = false on a trusted network")
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if login is not None:
                smtp.login(login.username, login.password.get_secret_value())
            for msg in messages:
                smtp.send_message(msg)
    except CaaError:
        raise
    except smtplib.SMTPAuthenticationError as x:
        raise CaaError(f"the SMTP login was refused ({x.smtp_code})", where=where,
                       fix="check CAA_SMTP_USER / CAA_SMTP_PASSWORD or the secret email.smtp_secret_arn") from None
    except smtplib.SMTPNotSupportedError:
        raise CaaError("the SMTP server does not offer AUTH on this connection", where=where,
                       fix="enable email.starttls (most servers offer AUTH only over TLS), or unset the login") from None
    except smtplib.SMTPRecipientsRefused as x:
        raise CaaError(f"the SMTP server refused the recipients {', '.join(sorted(x.recipients))}", where=where,
                       fix="check email.to, email.owners and the owner tags") from None
    except smtplib.SMTPException as x:
        raise CaaError(f"sending failed: {type(x).__name__}", where=where,
                       fix="check the server's log; run with --debug for details") from None
    except ssl.SSLError as x:
        raise CaaError(f"the TLS handshake failed ({x.reason or 'ssl error'})", where=where,
                       fix="the server's certificate must be trusted (SSL_CERT_FILE) and name email.smtp_host") from None
    except OSError as x:  # includes timeouts and refused connections
        raise CaaError(f"cannot connect: {x.strerror or type(x).__name__}", where=where,
                       fix="check email.smtp_host and email.smtp_port, and that the server is up") from None


def send_ses(messages: list[EmailMessage], settings: Settings, clients: Any = None) -> None:
    from core.aws import Clients, aws_errors

    clients = clients or Clients(settings)
    scope = Scope()
    ses = clients.client(scope, "ses")
    for msg in messages:
        destinations = [a.strip() for a in (msg["To"] or "").split(",") if a.strip()]
        with aws_errors(scope, "ses", what="SendRawEmail"):
            ses.send_raw_email(Source=settings.email.from_addr, Destinations=destinations,
                               RawMessage={"Data": msg.as_bytes()})


def publish_sns(settings: Settings, subject: str, message: str, clients: Any = None) -> str:
    """Publish to settings.alerts.sns_topic_arn; returns the MessageId."""
    from core.aws import Clients, aws_errors

    arn = settings.alerts.sns_topic_arn
    clients = clients or Clients(settings)
    parts = arn.split(":")
    scope = Scope(region=parts[3] if len(parts) > 3 else None)
    sns = clients.client(scope, "sns")
    # SNS subjects: ASCII, no control characters, at most 100 characters
    clean = re.sub(r"[^\x20-\x7e]", "?", subject)[:100]
    with aws_errors(scope, "sns", what=f"topic {arn}"):
        return sns.publish(TopicArn=arn, Subject=clean, Message=message)["MessageId"]


def post_webhook(url: str, payload: dict, where: str) -> int:
    """POST JSON to the webhook; returns the HTTP status. `where` names the variable or secret (never the
    URL, which is the credential)."""
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "caa/0.1"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310 - an http(s) URL, checked
            return resp.status
    except urllib.error.HTTPError as x:
        raise CaaError(f"the webhook answered HTTP {x.code}", where=where,
                       fix="check that the webhook still exists and accepts JSON {text, blocks}") from None
    except (urllib.error.URLError, OSError) as x:
        reason = getattr(x, "reason", None) or type(x).__name__
        reason = getattr(reason, "strerror", None) or (reason if isinstance(reason, str) else type(reason).__name__)
        raise CaaError(f"cannot reach the webhook: {reason}", where=where,
                       fix="check the URL in that variable or secret, and the network") from None



def deliver_cost_emails(settings: Settings, to: list[str] | None = None, dry_run: bool = False,
                        out: Path | None = None, clients: Any = None) -> list[str]:
    """`caa email send`: build the digests from the reader snapshot, then send them (or write .eml files).
    Returns the lines to print."""
    from core import store
    from delivery import mail

    con = store.require_reader(settings.db)
    with con:
        built, notes = mail.build_digests(con, settings, to=to)
    lines = [f"note: {n}" for n in notes]
    messages = [m for _, m in built]

    def what(d: Any) -> str:
        scope = f"{len(d.repositories)} repositories of {d.owner}" if d.owner else "the whole estate"
        return f"{scope}: {mail.usd(d.mtd_usd)} month to date, {mail.usd(d.projected_usd)} projected"

    if dry_run:
        paths = write_outbox(messages, outbox_dir(settings, out))
        return lines + [f"wrote {p} for {', '.join(d.recipients)} ({what(d)})"
                        for (d, _), p in zip(built, paths, strict=True)]
    send_email(messages, settings, clients)
    via = "SES" if settings.email.transport == "ses" else f"{settings.email.smtp_host}:{settings.email.smtp_port}"
    return lines + [f"sent to {', '.join(d.recipients)} via {via} ({what(d)})" for d, _ in built]
