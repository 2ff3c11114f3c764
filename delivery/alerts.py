"""Spike and auth-failure alerts to e-mail, SNS or a Slack-compatible webhook, once per spike.

Reads: the spikes of analytics.spikes.detect_spikes over the last settings.alerts.since_days days of the
store's data (from the reader snapshot), `alert_state` and the repositories' owner tags. Writes:
`alert_state` (core/schema/004_alerts.sql) inside the store's write session, after sending.

A spike alerts once. It alerts again ("grown") only when its excess is up by GROWTH (50%) or more
since the last alert, or its end moved later. A channel that failed is retried on the next run; the
others are not repeated. `dry_run` prints what would go out and writes nothing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from fnmatch import fnmatchcase
from typing import Any

import duckdb
import pandas as pd

from analytics import rollups, spikes
from analytics.overview import as_of
from core import store
from core.clock import utc_now
from core.errors import CaaError
from core.settings import Settings
from delivery import mail, notify
from delivery.secrets import webhook_url

GROWTH = 1.5
KEY_COLUMNS = ["kind", "account_id", "region", "domain", "repository", "format", "namespace", "package",
               "principal_arn", "level"]
STATE_SQL = "SELECT spike_key, end_at, excess, channels, alerts_sent FROM alert_state"
UPSERT_SQL = ("INSERT OR REPLACE INTO alert_state (spike_key, kind, account_id, region, domain, repository, package, "
              "principal_arn, start_at, end_at, excess, sent_at, channels, alerts_sent) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


@dataclass
class Alert:
    key: str
    spike: dict
    grown_from: float | None  # the excess of the last alert when this is a re-alert
    channels: list[str]  # channels to send to now
    already: list[str]  # channels that already have this version of the alert

    @property
    def title(self) -> str:
        s = self.spike
        where = f"{s['domain']}/{s['repository']}" if _str(s["repository"]) else str(s["domain"])
        if s["kind"] == "auth":
            what = f"Auth failures ({s['signal']}) by {s['principal_arn']} in {where}"
        else:
            pkg = f"{s['namespace']}/{s['package']}" if _str(s["namespace"]) else str(s["package"])
            what = (f"Request spike by {s['principal_arn']}" if s["unit"] == "requests"
                    else f"Download spike of {s['format']} {pkg} in {where}")
        return ("[caa] grown: " if self.grown_from is not None else "[caa] ") + what

    def lines(self, dashboard_url: str) -> list[str]:
        s = self.spike
        unit = s["unit"]
        grown = f" (was {self.grown_from:,.0f} at the last alert)" if self.grown_from is not None else ""
        out = [f"When: {s['start']:%Y-%m-%d %H:%M} to {s['end']:%Y-%m-%d %H:%M} UTC",
               f"Size: {s['excess']:,.0f} excess {unit}{grown}; observed {s['observed']:,.0f} vs baseline "
               f"{s['baseline']:,.0f}; score {s['score']:,.1f}",
               f"Signal: {s['signal']} at the {s['level']} level",
               f"Cost: ${s['excess_cost_usd']:,.4f} for {s['billable_requests']:,.0f} billable of "
               f"{s['excess_requests']:,.0f} excess requests (free tier: {s['free_tier']})"
               + (" (denied calls are not billed)" if s["signal"] == "access_denied" else "")]
        for label, col in (("Principals", "top_principals"), ("User agents", "top_user_agents"),
                           ("Source IPs", "top_source_ips")):
            vals = list(s[col]) if isinstance(s[col], list | tuple) else []
            if vals:
                out.append(f"{label}: " + "; ".join(str(v)[:200] for v in vals))
        out.append(f"Account {s['account_id']} region {s['region']}; dashboard: {dashboard_url}")
        return out


def _str(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v


def spike_key(s: dict) -> str:
    """kind + where (or who) + start: the identity of a spike across runs."""
    parts = ["" if _plain(s.get(c)) is None else str(s[c]) for c in KEY_COLUMNS]
    return "|".join([*parts, pd.Timestamp(s["start"]).tz_convert("UTC").isoformat()])


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    try:
        return {r[0]: r[1:] for r in con.execute(STATE_SQL).fetchall()}
    except duckdb.CatalogException:  # a snapshot from before migration 004: nothing was alerted yet
        return {}


def plan(found: pd.DataFrame, state: dict[str, tuple], channels: list[str]) -> list[Alert]:
    """Which spikes go to which channels now."""
    out = []
    for s in found.to_dict(orient="records"):
        key = spike_key(s)
        if key not in state:
            out.append(Alert(key, s, None, list(channels), []))
            continue
        end_at, excess, sent_on, _ = state[key]
        end = pd.Timestamp(s["end"]).tz_convert("UTC")
        if (s["excess"] >= excess * GROWTH and s["excess"] > excess) or end > pd.Timestamp(end_at).tz_convert("UTC"):
            out.append(Alert(key, s, float(excess), list(channels), []))
        elif missing := [c for c in channels if c not in (sent_on or [])]:
            out.append(Alert(key, s, None, missing, list(sent_on or [])))
    return out


def slack_escape(text: str) -> str:
    """Slack mrkdwn reads <...> as links and mentions: &, < and > must be entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(a: Alert, dashboard_url: str) -> dict:
    body = "\n".join(slack_escape(line) for line in a.lines(dashboard_url))
    return {"text": slack_escape(a.title) + "\n" + body,
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": a.title[:150]}},
                       {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}}]}


def email_message(a: Alert, settings: Settings, recipients: list[str]) -> EmailMessage:
    import html

    msg = EmailMessage()
    msg["Subject"] = a.title[:200]
    msg["From"] = settings.email.from_addr
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid("caa-alert", domain=settings.email.from_addr.rsplit("@", 1)[-1])
    lines = a.lines(settings.email.dashboard_url)
    msg.set_content(a.title + "\n\n" + "\n".join(lines) + "\n")
    msg.add_alternative("<!DOCTYPE html><html><body><h3>" + html.escape(a.title) + "</h3><ul>" + "".join(
        f"<li>{html.escape(line)}</li>" for line in lines) + "</ul></body></html>", subtype="html")
    return msg


def _recipients(settings: Settings, spike: dict, tags: pd.DataFrame) -> list[str]:
    out = list(settings.email.to)
    repo = spike["repository"]
    if _str(repo):
        out += [o for o, globs in settings.email.owners.items() if any(fnmatchcase(repo, g) for g in globs)]
        hit = tags[(tags["domain"] == spike["domain"]) & (tags["repository"] == repo)]
        out += [t for t in hit["tag_owner"].dropna() if isinstance(t, str)]
    return [a for a in dict.fromkeys(out) if mail.valid_address(a)]


def configured_channels(settings: Settings) -> list[str]:
    out = []
    if settings.alerts.email and settings.email.to:
        out.append("email")
    if settings.alerts.sns_topic_arn:
        out.append("sns")
    if settings.alerts.webhook_secret_arn or settings.alerts.webhook_url_env in os.environ:
        out.append("webhook")
    return out


def send_alerts(settings: Settings, dry_run: bool = False, clients: Any = None,
                now: datetime | None = None) -> list[str]:
    """Detect, decide, send, record. Returns one line per alert (and a summary line)."""
    channels = configured_channels(settings)
    if not channels:
        raise CaaError("no alert channel is configured", where="[alerts]",
                       fix="set alerts.sns_topic_arn, the webhook variable (alerts.webhook_url_env) or "
                           "alerts.webhook_secret_arn, or alerts.email = true with email.to")
    con = store.require_reader(settings.db)
    with con:
        when = as_of(con)
        since = (when.day - timedelta(days=settings.alerts.since_days)) if when else None
        found = spikes.detect_spikes(con, settings, since) if when else pd.DataFrame(columns=spikes.COLUMNS)
        tags = con.execute(mail.OWNER_TAGS_SQL).df()
        snapshot_state = _state(con)
    if dry_run:
        alerts = plan(found, snapshot_state, channels)
        return [f"would alert on {', '.join(a.channels)}: {a.title}" for a in alerts] + [
            f"dry run: {len(alerts)} alerts of {len(found)} spikes since {since}; nothing sent or recorded"]
    url = webhook_url(settings, clients) if "webhook" in channels else None
    lines, failures = [], []
    with rollups.writer(settings.db) as wcon:
        alerts = plan(found, _state(wcon), channels)  # the store's state is the authority
        for a in alerts:
            delivered = []
            for channel in a.channels:
                try:
                    _deliver(channel, a, settings, url, tags, clients)
                    delivered.append(channel)
                except CaaError as e:
                    failures.append(f"alert {channel} failed: {e}")
            if delivered:
                _record(wcon, a, a.already + delivered, now or utc_now())
                lines.append(f"alerted on {', '.join(delivered)}: {a.title}")
    lines.append(f"{len(lines)} alerts sent for {len(found)} spikes since {since}")
    if failures:
        raise CaaError("; ".join(failures[:3]) + (f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""),
                       fix="the other channels were delivered and recorded; the next run retries this one")
    return lines


def _deliver(channel: str, a: Alert, settings: Settings, url: Any, tags: pd.DataFrame, clients: Any) -> None:
    dash = settings.email.dashboard_url
    if channel == "sns":
        notify.publish_sns(settings, a.title, a.title + "\n\n" + "\n".join(a.lines(dash)), clients)
    elif channel == "webhook":
        where = settings.alerts.webhook_url_env if settings.alerts.webhook_url_env in os.environ \
            else "alerts.webhook_secret_arn"
        notify.post_webhook(url.get_secret_value(), slack_payload(a, dash), where=f"webhook from {where}")
    elif channel == "email":
        recipients = _recipients(settings, a.spike, tags)
        notify.send_email([email_message(a, settings, recipients)], settings, clients)


def _record(con: duckdb.DuckDBPyConnection, a: Alert, channels: list[str], now: datetime) -> None:
    s = a.spike
    prev = con.execute("SELECT alerts_sent, excess, end_at FROM alert_state WHERE spike_key = ?", [a.key]).fetchone()
    fresh = prev is None or a.grown_from is not None
    excess = float(s["excess"]) if fresh else prev[1]
    end = _plain(pd.Timestamp(s["end"])) if fresh else prev[2]
    count = (prev[0] if prev else 0) + (1 if fresh else 0)
    with store.load_transaction(con):
        con.execute(UPSERT_SQL, [a.key, s["kind"], _plain(s["account_id"]), _plain(s["region"]), _plain(s["domain"]),
                                 _plain(s["repository"]), _plain(s["package"]), _plain(s["principal_arn"]),
                                 _plain(pd.Timestamp(s["start"])), end, excess, now,
                                 sorted(set(channels)), count])
