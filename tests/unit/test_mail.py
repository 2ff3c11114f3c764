"""The cost e-mail's rendering and the alert rules, without a store or a server: every data-derived string
is escaped in the HTML, the MIME tree is the one mail clients expect, owners resolve from settings then
tags, and a spike re-alerts only when it grows."""

from __future__ import annotations

import datetime as dt
import email
import re
from email import policy

import pandas as pd
import pytest

from delivery import alerts, mail
from tests.fixtures.hostile import HOSTILE
from tests.helpers import make_settings

EVIL = HOSTILE["html-img"]
T = pd.Timestamp("2026-06-10 10:00", tz="UTC")


def _estate(repositories: pd.DataFrame | None = None) -> mail.Estate:
    empty = pd.DataFrame()
    return mail.Estate(month_start=dt.date(2026, 6, 1), until=dt.date(2026, 6, 20),
                       last_month_start=dt.date(2026, 5, 1), last_month_end=dt.date(2026, 5, 31), mtd=empty,
                       previous=empty, moving=empty, moved_from=empty, last_month=empty,
                       projected=pd.DataFrame(columns=[*mail.DOMAIN, "expected_usd"]), storage_daily=empty,
                       storage_shares=empty, requests_daily=empty, cleanup=empty, spikes=empty,
                       spikes_since=dt.date(2026, 6, 1), repositories=repositories if repositories is not None else empty)


def _spike(**over) -> dict:
    s = {"kind": "download", "account_id": "111111111111", "region": "us-east-1", "domain": EVIL,
         "repository": HOSTILE["html-script"], "format": "npm", "namespace": HOSTILE["html-attr"], "package": EVIL,
         "principal_arn": None, "level": "package", "signal": "sessions", "start": T,
         "end": T + pd.Timedelta(hours=2), "score": 12.5, "observed": 80.0, "baseline": 20.0, "excess": 60.0,
         "unit": "downloads", "excess_requests": 90, "billable_requests": 60, "free_tier": "pushed past",
         "excess_cost_usd": 0.0003, "top_principals": [f"{EVIL} (90%)"], "top_user_agents": [HOSTILE["template"]],
         "top_source_ips": ["203.0.113.9 (100%)"]}
    return {**s, **over}


@pytest.fixture
def hostile_digest() -> mail.Digest:
    dom = pd.DataFrame([{"account_id": "111111111111", "region": "us-east-1", "domain": EVIL, "mtd_usd": 1.5,
                         "projected_usd": 2.25, "last_month_usd": 2.0}])
    pkg = {"account_id": "111111111111", "region": "us-east-1", "domain": EVIL, "repository": HOSTILE["html-script"],
           "format": "npm", "namespace": HOSTILE["html-attr"], "package": EVIL}
    movers = pd.DataFrame([{**pkg, "mtd_usd": 1.0, "previous_usd": 0.25, "delta_usd": 0.75}])
    savings = pd.DataFrame([{**pkg, "versions": 3, "reclaimable_gb": 1.5, "monthly_savings_usd": 0.08}])
    daily = pd.DataFrame({"usage_date": [dt.date(2026, 6, 1)], "storage_usd": [0.05], "requests_usd": [0.0]})
    return mail.Digest(recipients=["a@example.com"], owner=None, estate=_estate(), domains=dom, movers=movers,
                       savings=savings, savings_total={"permanent": 0.08, "refetchable": 0.0, "total": 0.08},
                       spikes=pd.DataFrame([_spike()]), daily=daily,
                       dashboard_url='https://caa.example.com/?a=1&b="><script>x</script>')


def test_every_data_string_is_escaped_in_the_html(hostile_digest):
    page = mail.render_html(hostile_digest, "chart@example.com")
    tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", page))
    assert tags <= {"html", "head", "meta", "body", "h2", "h3", "p", "img", "table", "tr", "th", "td", "a"}
    assert page.count("<img ") == 1 and page.count("<script") == 0 and "onerror=alert(1)>" not in page
    for raw in (EVIL, HOSTILE["html-script"], HOSTILE["html-attr"]):
        assert mail._e(raw) in page
    assert 'href="https://caa.example.com/?a=1&amp;b=&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in page
    text = mail.render_text(hostile_digest)
    assert EVIL in text and "$1.50" in text and "$2.25" in text and "+$0.75" in text


def test_the_mime_tree_has_the_chart_inline_and_referenced(hostile_digest):
    msg = mail.build_message(hostile_digest, "caa@example.com", b"\x89PNG\r\n\x1a\nfake")
    parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png"]
    png = list(parsed.walk())[-1]
    assert f'src="cid:{png["Content-ID"].strip("<>")}"' in parsed.get_body(("html",)).get_content()
    assert png["Content-Disposition"].startswith("inline")


def test_owners_come_from_settings_globs_then_the_owner_tag_and_bad_addresses_are_dropped():
    repos = pd.DataFrame([("1", "r", "d", "app-web", "tagged@example.com"),
                          ("1", "r", "d", "data-lake", "lake@example.com, second@example.com"),
                          ("1", "r", "d", "evil", "x@example.com\r\nBcc: victim@example.com"),
                          ("1", "r", "d", "none", None)], columns=[*mail.REPO, "tag_owner"])
    settings = make_settings(email={"owners": {"web@example.com": ["app-*"]}})
    got = mail.owner_repositories(_estate(repos), settings)
    assert got == {"web@example.com": {("1", "r", "d", "app-web")}, "lake@example.com": {("1", "r", "d", "data-lake")},
                   "second@example.com": {("1", "r", "d", "data-lake")}}
    assert not mail.valid_address("a@example.com, b@example.com") and not mail.valid_address(HOSTILE["crlf-header"])


def test_a_spike_realerts_only_when_it_grows_and_a_failed_channel_is_retried_alone():
    s = _spike()
    key = alerts.spike_key(s)
    assert key != alerts.spike_key(_spike(start=T + pd.Timedelta(hours=1)))
    sent = {key: (s["end"].to_pydatetime(), 60.0, ["sns", "webhook"], 1)}
    frame = lambda **over: pd.DataFrame([_spike(**over)])  # noqa: E731
    assert alerts.plan(frame(), {}, ["sns", "webhook"])[0].channels == ["sns", "webhook"]
    assert alerts.plan(frame(excess=89.0), sent, ["sns", "webhook"]) == []  # +48%: not yet
    grown = alerts.plan(frame(excess=90.0), sent, ["sns", "webhook"])
    assert len(grown) == 1 and grown[0].grown_from == 60.0 and grown[0].title.startswith("[caa] grown: ")
    assert alerts.plan(frame(end=T + pd.Timedelta(hours=3)), sent, ["sns"])[0].grown_from == 60.0
    retry = alerts.plan(frame(), {key: (s["end"].to_pydatetime(), 60.0, ["sns"], 1)}, ["sns", "webhook"])
    assert [(a.channels, a.already, a.grown_from) for a in retry] == [(["webhook"], ["sns"], None)]


def test_slack_text_cannot_mention_or_link():
    payload = alerts.slack_payload(alerts.Alert("k", _spike(package="<!channel> <https://evil|click>"), None,
                                                ["webhook"], []), "https://caa.example.com")
    assert "<!channel>" not in payload["text"] and "<https://evil" not in payload["text"]
    assert "&lt;!channel&gt;" in payload["text"]


def test_kaleidos_page_race_gets_a_fresh_browser_and_any_other_failure_is_one_line(monkeypatch):
    """kaleido 1.5.1 can call into its page before kaleido_scopes.js ran (mail.PAGE_RACE_ATTEMPTS): that
    ReferenceError renders again in a new browser; a different error is reported at once."""
    import kaleido
    import plotly.graph_objects as go

    from core.errors import CaaError

    calls, browsers = [], []
    race = RuntimeError("{'className': 'ReferenceError', 'description': 'ReferenceError: kaleido_scopes is not defined'}")
    real_enter = kaleido.Kaleido.__aenter__

    async def enter(self):  # a real Chromium each attempt; the render itself is scripted
        browsers.append(1)
        return await real_enter(self)

    async def flaky(self, fig, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise race
        return b"\x89PNG scripted"  # (a real render could meet the real race again: that is not under test)

    monkeypatch.setattr(kaleido.Kaleido, "__aenter__", enter)
    monkeypatch.setattr(kaleido.Kaleido, "calc_fig", flaky)
    (png,) = mail.render_pngs([go.Figure(go.Bar(x=[1], y=[2]))])
    assert png == b"\x89PNG scripted" and len(calls) == 2 and len(browsers) == 2  # a fresh browser for the retry

    async def broken(self, fig, **kw):
        calls.append(1)
        raise RuntimeError("Chromium crashed\nmore detail")

    calls.clear()
    monkeypatch.setattr(kaleido.Kaleido, "calc_fig", broken)
    with pytest.raises(CaaError, match=r"kaleido could not start Chromium \(Chromium crashed\)"):
        mail.render_pngs([go.Figure()])
    assert len(calls) == 1  # not tried again


def test_a_browser_that_never_answers_ends_the_render_with_one_line(monkeypatch):
    """A Chromium that exits while kaleido waits for its tab left render_pngs waiting for ever (kaleido times
    a render, not that wait): the whole render is bounded (mail.RENDER_TIMEOUT_S), then a one-line error, and
    it is not tried again."""
    import asyncio
    import time

    import kaleido
    import plotly.graph_objects as go

    from core.errors import CaaError

    entered = []

    async def enter(self):  # no browser: the render below waits as kaleido's wait for a dead browser's tab did
        entered.append(1)
        return self

    async def leave(self, *exc):
        return None

    async def never(self, fig, **kw):
        await asyncio.Event().wait()

    monkeypatch.setattr(kaleido.Kaleido, "__aenter__", enter)
    monkeypatch.setattr(kaleido.Kaleido, "__aexit__", leave)
    monkeypatch.setattr(kaleido.Kaleido, "calc_fig", never)
    monkeypatch.setattr(mail, "RENDER_TIMEOUT_S", 0.5)
    t0 = time.monotonic()
    with pytest.raises(CaaError) as err:
        mail.render_pngs([go.Figure(go.Bar(x=[1], y=[2]))])
    assert err.value.what == "cannot render the cost chart: Chromium gave no answer in 0.5 s"
    assert "\n" not in str(err.value) and "chromium --version" in err.value.fix
    assert time.monotonic() - t0 < 30 and entered == [1]
