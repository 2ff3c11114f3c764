"""The `caa` command as a user meets it: --help everywhere, one-line errors, read-only sql."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import pytest

from collectors import cloudtrail
from core import store
from core.settings import load_settings
from tests.fixtures.trails import TRAIL_NOW, trail_files, write_local
from tests.helpers import collect, writer

COMMANDS = ["collect", "sql", "dashboard", "demo"]


def caa(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


@pytest.mark.parametrize("cmd", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(cmd):
    out = caa(*cmd, "--help")
    assert out.returncode == 0 and "Usage: " in out.stdout
    if cmd:
        assert "--db" in out.stdout or cmd == ["dashboard"] and "--db" in out.stdout


@pytest.fixture
def small_db(tmp_path):
    root = write_local(tmp_path / "trail", trail_files(n_files=5, per_file=10))
    db = tmp_path / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=date(2026, 10, 25), source=str(root))
    return db


def test_sql_reads_the_store_in_every_format(small_db):
    out = caa("sql", "SELECT count(*) AS n FROM downloads", "--format", "json", "--db", str(small_db))
    assert out.returncode == 0
    n = json.loads(out.stdout)[0]["n"]
    assert n > 0
    csv_out = caa("sql", "SELECT count(*) AS n FROM downloads", "--format", "csv", env={"CAA_DB": str(small_db)})
    assert csv_out.stdout.split() == ["n", str(n)]


@pytest.mark.parametrize("statement", ["DELETE FROM events", "DROP TABLE events",
                                       "INSERT INTO watermarks VALUES ('a', 'b', 'c', now())"])
def test_sql_refuses_writes_and_the_data_stays(small_db, statement):
    before = caa("sql", "SELECT count(*) FROM events", "--format", "csv", "--db", str(small_db)).stdout
    line = one_line_error(caa("sql", statement, "--db", str(small_db)))
    assert "read-only" in line and "fix:" in line
    assert caa("sql", "SELECT count(*) FROM events", "--format", "csv", "--db", str(small_db)).stdout == before


def test_sql_errors_are_one_line(small_db, tmp_path):
    assert "no such table" in one_line_error(caa("sql", "SELECT * FROM nope", "--db", str(small_db))).lower() \
        or "does not exist" in one_line_error(caa("sql", "SELECT * FROM nope", "--db", str(small_db)))
    line = one_line_error(caa("sql", "SELECT 1", "--db", str(tmp_path / "missing.duckdb")))
    assert "no data yet" in line and "make demo" in line


def test_bad_settings_fail_at_startup_naming_the_key(tmp_path):
    config = tmp_path / "caa.toml"
    config.write_text('[[accounts]]\nid = "12345"\n')
    line = one_line_error(caa("collect", "cloudtrail", env={"CAA_CONFIG": str(config)}))
    assert "accounts.0.id" in line and "12 digits" in line and str(config) in line
    config.write_text("[prices\n")
    assert "not valid TOML" in one_line_error(caa("sql", "SELECT 1", env={"CAA_CONFIG": str(config)}))
    line = one_line_error(caa("sql", "SELECT 1", env={"CAA_PRICES__STORAGE_USD_PER_GB_MONTH": "-1",
                                                      "CAA_CONFIG": str(tmp_path / "none.toml")}))
    assert "config error" in line
    line = one_line_error(caa("sql", "SELECT 1", env={"CAA_CONFIG": str(tmp_path)}))  # a folder: was an internal error
    assert f"cannot read the config file {tmp_path}" in line and "CAA_CONFIG" in line, line


def test_a_config_saved_with_a_byte_order_mark_is_read_and_the_environment_still_overrides_it(tmp_path, monkeypatch):
    """Windows editors start a UTF-8 file with a byte-order mark; TOML's parser refused it as an 'Invalid
    statement (at line 1, column 1)'."""
    config = tmp_path / "caa.toml"
    config.write_bytes("\ufeff[cleanup]\r\nunused_days = 120\r\nkeep_latest = 7\r\n".encode())
    monkeypatch.setenv("CAA_CLEANUP__KEEP_LATEST", "2")
    s = load_settings(config)
    assert (s.cleanup.unused_days, s.cleanup.keep_latest) == (120, 2)
    monkeypatch.delenv("CAA_CLEANUP__KEEP_LATEST")
    assert load_settings(config).cleanup.keep_latest == 7


def test_debug_shows_the_traceback(tmp_path):
    config = tmp_path / "caa.toml"
    config.write_text('[[accounts]]\nid = "12345"\n')
    out = caa("--debug", "collect", "cloudtrail", env={"CAA_CONFIG": str(config)})
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_unwritable_store_is_a_clear_error_and_nothing_committed_is_lost(small_db, tmp_path):
    before = caa("sql", "SELECT count(*) FROM events", "--format", "csv", "--db", str(small_db)).stdout
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's folder should be")  # unwritable even for root
    line = one_line_error(caa("collect", "cloudtrail", "--source", str(tmp_path / "trail"),
                              "--db", str(blocker / "caa.duckdb")))
    assert "store error" in line and "--db" in line
    assert caa("sql", "SELECT count(*) FROM events", "--format", "csv", "--db", str(small_db)).stdout == before


def test_progress_bars_on_a_terminal_do_not_change_the_result(tmp_path):
    root = write_local(tmp_path / "trail", trail_files(n_files=8, per_file=10))
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    collect(a, [cloudtrail.SPEC], since=date(2026, 10, 25), source=str(root))
    with writer(b) as con:
        from collectors.base import RunContext, run_collectors
        from tests.helpers import make_settings

        ctx = RunContext(settings=make_settings(db=b), con=con, since=date(2026, 10, 25), source=str(root),
                         show_progress=True, now=TRAIL_NOW)
        assert run_collectors([cloudtrail.SPEC], ctx) == 0
    from tests.helpers import table

    assert table(a, "events") == table(b, "events")


def test_what_duckdb_prints_while_a_read_upgrades_the_store_goes_to_stderr():
    """cli.upgrade_to_read runs the upgrade with the process's stdout on stderr: DuckDB writes its progress bar
    (a long rebuild of a rollup) to file descriptor 1 itself, and `caa sql --format csv > out.csv` would carry it."""
    code = ("import cli, duckdb\n"
            "with cli._stdout_to_stderr():\n"
            "    con = duckdb.connect()\n"
            "    con.execute('SET progress_bar_time = 0')  # the bar at once, not after 2 s\n"
            "    con.execute('SELECT count(DISTINCT i * 7919 % 100000007) FROM range(20000000) t(i)').fetchall()\n"
            "    print('a note')\n"
            "print('the output')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "the output\n"
    assert "100%" in out.stderr and "a note" in out.stderr


def run_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`caa *args` in this process (as the console script runs it): exit code, stdout, stderr."""
    import cli

    monkeypatch.setattr(sys, "argv", ["caa", *args])
    with pytest.raises(SystemExit) as done:
        cli.main()
    out = capsys.readouterr()
    return done.value.code or 0, out.out, out.err


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("statement, says", [
    ("COPY (SELECT 'x' AS x) TO '{snapshot}' (FORMAT csv)", "COPY statements are refused"),
    ("COPY (SELECT 'x' AS x) TO '{db}' (FORMAT csv)", "COPY statements are refused"),
    ("COPY (SELECT * FROM events) TO '{out}/events.csv'", "COPY statements are refused"),
    ("EXPORT DATABASE '{out}/export'", "EXPORT statements are refused"),
    ("SELECT * FROM read_text('/etc/shadow')", "reads the store's tables only"),
    ("SELECT * FROM read_csv('/etc/passwd')", "reads the store's tables only"),
    ("SELECT * FROM read_blob('/etc/passwd')", "reads the store's tables only"),
    ("SELECT * FROM glob('/etc/*')", "reads the store's tables only"),
    ("SELECT * FROM read_parquet('{out}/*.parquet')", "reads the store's tables only"),
    ("SET memory_limit = '1GB'", "SET statements are refused"),
    ("CREATE TEMP TABLE t AS SELECT 1", "CREATE statements are refused"),
    ("PRAGMA database_size", "PRAGMA statements are refused"),
    ("CALL checkpoint()", "CALL statements are refused"),
    ("ATTACH '{out}/other.duckdb' AS o", "ATTACH statements are refused"),
    ("INSTALL httpfs", "LOAD statements are refused"),
    ("EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1", "CREATE statements are refused"),
    ("SELECT 1; DELETE FROM events", "DELETE statements are refused"),
    ("SELECT 1; SELECT 2", "2 statements were given"),
])
def test_sql_can_neither_write_nor_read_outside_the_store(small_db, tmp_path, monkeypatch, capsys, statement, says):
    out = tmp_path / "out"
    out.mkdir()
    snapshot = store.snapshot_path(small_db)
    before = (_sha(small_db), _sha(snapshot))
    text = statement.format(db=small_db, snapshot=snapshot, out=out)
    code, stdout, stderr = run_in_process(monkeypatch, capsys, "sql", text, "--db", str(small_db))
    assert code == 1 and stdout == "" and len(stderr.strip().splitlines()) == 1, stderr
    assert says in stderr and "fix:" in stderr and "Traceback" not in stderr, stderr
    assert "check the table and column names" not in stderr  # a refusal is not a typo
    assert (_sha(small_db), _sha(snapshot)) == before  # the store and its snapshot are untouched
    assert list(out.iterdir()) == []  # nothing was written
    assert "root:" not in stderr  # no file's content leaked into the message
    code, stdout, _ = run_in_process(monkeypatch, capsys, "sql", "SELECT count(*) AS n FROM events", "--format", "csv",
                                     "--db", str(small_db))
    assert code == 0 and int(stdout.split()[1]) > 0  # and the next query reads the store as before


@pytest.mark.parametrize("query", ["DESCRIBE events", "SHOW TABLES", "SUMMARIZE downloads", "FROM downloads LIMIT 1",
                                   "WITH d AS (SELECT 1 AS n) SELECT n FROM d", "EXPLAIN SELECT count(*) FROM events"])
def test_sql_still_answers_every_kind_of_read(small_db, monkeypatch, capsys, query):
    code, stdout, stderr = run_in_process(monkeypatch, capsys, "sql", query, "--format", "json", "--db", str(small_db))
    assert code == 0 and json.loads(stdout), stderr


@pytest.mark.parametrize("toml, says", [
    (b"[prices]\nstorage_usd_per_gb_mnth = 0.06\n",
     ["unknown setting prices.storage_usd_per_gb_mnth (did you mean prices.storage_usd_per_gb_month?)"]),
    (b"[cleanup]\nkeep_lattest = 2\n[cloudtrail]\nsourcez = []\n",  # every bad key at once
     ["cleanup.keep_lattest (did you mean cleanup.keep_latest?)", "cloudtrail.sourcez (did you mean cloudtrail.sources?)"]),
    (b'[[accounts]]\nid = "123456789012"\nregion = "us-east-1"\n', ["accounts.0.region (did you mean accounts.0.regions?)"]),
    (b"[prices.regions.eu-west-1]\nstorage_usd_per_gb_mnth = 0.1\n",
     ["prices.regions.eu-west-1.storage_usd_per_gb_mnth (did you mean prices.regions.eu-west-1.storage_usd_per_gb_month?)"]),
    (b"[prices]\nstorage_usd_per_gb_month = inf\n", ["prices.storage_usd_per_gb_month is invalid", "finite"]),
    (b"[cloudtrail]\nbatch_files = 0\n", ["cloudtrail.batch_files is invalid", "1 to 5000"]),
    (b'[prices]\nnote = "caf\xe9"\n', ["is not UTF-8 text (byte", "save the file as UTF-8"]),
    (b'[email]\nsender = "caa@example.com"\n', ["unknown setting email.sender (did you mean email.from_addr?)"]),
    # a secret written into the file: where caa takes it from instead (not the nearest key), never the value
    (b'[email]\nsmtp_password = "hunter2"\n', ["email.smtp_password is a secret", "CAA_SMTP_PASSWORD"]),
    (b'[alerts]\nwebhook_url = "https://hooks.example.com/hunter2"\n', ["alerts.webhook_url is a secret",
                                                                        "CAA_WEBHOOK_URL"]),
    (b'[[accounts]]\nid = "123456789012"\naws_secret_access_key = "hunter2"\n',
     ["accounts.0.aws_secret_access_key is a secret", "AWS_PROFILE"]),
])
def test_config_mistakes_are_one_line_naming_each_key_and_the_fix(tmp_path, monkeypatch, capsys, toml, says):
    config = tmp_path / "caa.toml"
    config.write_bytes(toml)
    monkeypatch.setenv("CAA_CONFIG", str(config))
    code, _, err = run_in_process(monkeypatch, capsys, "sql", "SELECT 1")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "internal error" not in err, err
    assert err.startswith("caa: config error: ") and "fix:" in err and str(config) in err, err
    for text in says:
        assert text in err, err
    assert "hunter2" not in err  # a secret's value is never echoed


@pytest.mark.parametrize("name, value, says", [
    ("CAA_ACCOUNTS", '[{"id": ', "CAA_ACCOUNTS is not valid JSON"),
    ("CAA_CLOUDTRAIL__BATCH_FILES", "-1", "cloudtrail.batch_files is invalid"),
    ("CAA_PRICES__STORAGE_USD_PER_GB_MONTH", "inf", "finite"),
])
def test_bad_environment_settings_are_one_line_naming_the_variable(tmp_path, monkeypatch, capsys, name, value, says):
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("CAA_CONFIG")
    monkeypatch.chdir(tmp_path)  # no ./caa.toml
    monkeypatch.setenv(name, value)
    code, _, err = run_in_process(monkeypatch, capsys, "sql", "SELECT 1")
    assert code == 1 and len(err.strip().splitlines()) == 1 and says in err and name in err and "fix:" in err, err


def test_collect_exits_3_when_it_skipped_bad_input_and_0_when_nothing_was_skipped(tmp_path, monkeypatch, capsys):
    import gzip

    files = trail_files(n_files=6, per_file=10)
    bad = sorted(k for k in files if "/CloudTrail/" in k)[2]
    files[bad] = gzip.compress(b'{"Records": [{"eventID": "x",')
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    monkeypatch.setenv("CAA_NOW", TRAIL_NOW.isoformat())
    args = ("collect", "cloudtrail", "--source", str(root), "--since", "2026-10-25", "--db", str(db), "--no-refresh")
    code, _, err = run_in_process(monkeypatch, capsys, *args)
    assert code == 3, err
    assert err.strip().splitlines()[-1] == "caa: partial: 1 input item(s) skipped and named above; everything else " \
                                          "was collected (exit 3)"
    assert bad in err
    assert store.open_reader(db).execute("SELECT count(*) > 0 FROM events").fetchone() == (True,)
    (root / bad).unlink()  # the bad file removed: the next run is clean
    code, _, err = run_in_process(monkeypatch, capsys, *args)
    assert code == 0 and "partial" not in err, err


def test_readers_open_at_the_same_time_are_each_utc_and_locked(small_db, monkeypatch):
    """DuckDB shares one instance per file in a process (the dashboard's sessions): the second reader
    must neither fail on the locked configuration nor fall back to the machine's time zone."""
    import time as time_mod

    import duckdb

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time_mod.tzset()
    try:
        with store.open_reader(small_db) as first, store.open_reader(small_db) as second:
            for con in (first, second):
                assert con.execute("SELECT current_setting('TimeZone')").fetchone()[0] == "UTC"
                with pytest.raises(duckdb.PermissionException):
                    con.execute("SELECT * FROM read_csv('/etc/passwd')")
    finally:
        monkeypatch.undo()
        time_mod.tzset()


def test_a_port_or_address_the_dashboard_cannot_use_is_one_line_before_any_work(tmp_path):
    """`caa dashboard` and `caa demo` on a port another server holds, an address of no interface here or a
    port out of range: one line naming the option, no traceback, and the demo builds nothing first."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(caa("dashboard", "--port", str(port), "--db", str(tmp_path / "caa.duckdb")))
        assert f"port {port} is already in use" in line and "--port" in line, line
        demo_db = tmp_path / "demo" / "caa.duckdb"
        line = one_line_error(caa("demo", "--port", str(port), "--db", str(demo_db)))
        assert f"port {port} is already in use" in line, line
        assert not demo_db.parent.exists()  # refused before the build
    line = one_line_error(caa("dashboard", "--address", "192.0.2.1", "--db", str(tmp_path / "caa.duckdb")))
    assert "cannot serve the dashboard on 192.0.2.1" in line and "--address" in line, line  # TEST-NET-1
    out = caa("dashboard", "--port", "99999", "--db", str(tmp_path / "caa.duckdb"))
    assert out.returncode == 2 and "Traceback" not in out.stderr and "--port" in out.stderr, out.stderr


@pytest.mark.parametrize("config", ["", '[[accounts]]\nid = "444455556666"\n'
                                        'role_arn = "arn:aws:iam::444455556666:role/caa-collect"\n'
                                        'regions = ["us-east-1"]\n'])
def test_an_aws_profile_that_does_not_exist_is_one_line_naming_it(tmp_path, config):
    """AWS_PROFILE naming a profile the AWS config lacks (a typo, another machine's name) fails at the first
    session, for the caller's own account and for an account reached by a role: one line with the profile's
    name and how to list the real ones, not an "internal error"."""
    aws_config = tmp_path / "aws-config"
    aws_config.write_text("[profile real]\nregion = us-east-1\n")
    (tmp_path / "caa.toml").write_text(config)
    env = {"AWS_PROFILE": "typo-profile", "AWS_CONFIG_FILE": str(aws_config),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "CAA_CONFIG": str(tmp_path / "caa.toml")}
    line = one_line_error(caa("collect", "inventory", "--db", str(tmp_path / "caa.duckdb"), env=env))
    assert "the AWS profile 'typo-profile' is not configured" in line and "aws configure list-profiles" in line, line
    assert "internal error" not in line


def test_names_from_the_data_reach_the_terminal_as_text(small_db, tmp_path):
    """Package names and trail keys are hostile input on a terminal too: an ESC sequence recolours or clears
    it, a bidi override reorders the line, a newline breaks a one-line report, and Rich read "[/bold]" as
    markup (caa sql ended in an internal error). Each now shows as its escape, and the rest as written."""
    from tests.fixtures.hostile import HOSTILE

    names = {"ansi": HOSTILE["ansi"], "rtl": HOSTILE["rtl-override"], "newline": HOSTILE["newline"],
             "markup": "[/bold]pkg[link=http://evil.example]x[/link]"}
    values = ", ".join(f"'{v}' AS {k}" for k, v in names.items())
    out = caa("sql", f"SELECT {values}", "--db", str(small_db), env={"COLUMNS": "300"})  # one line a row
    assert out.returncode == 0, out.stderr
    shown = out.stdout
    assert "\x1b" not in shown and "\u202e" not in shown
    assert "\\x1b[31mred\\x1b[0m\\x1b[2J" in shown and "\\u202egpj.exe" in shown and "line1\\x0aline2" in shown
    assert "[/bold]pkg[link=http://evil.example]x[/link]" in shown

    # a trail file whose key carries an ESC sequence and a newline, skipped as corrupt: its line names it as text
    root = tmp_path / "trail"
    day = root / "AWSLogs" / "111111111111" / "CloudTrail" / "us-east-1" / "2026" / "11" / "20"
    day.mkdir(parents=True)
    (day / "evil\x1b]0;owned\x07\nname.json.gz").write_bytes(b"not gzip")
    out = caa("collect", "cloudtrail", "--source", str(root), "--since", "2026-11-01", "--no-refresh",
              "--db", str(tmp_path / "skip.duckdb"))
    assert "\x1b" not in out.stdout + out.stderr and "\x07" not in out.stdout + out.stderr
    skipped = [ln for ln in out.stderr.splitlines() if "skipped" in ln and "evil" in ln]
    assert skipped and "evil\\x1b]0;owned\\x07\\x0aname.json.gz" in skipped[0], out.stderr


@pytest.mark.parametrize("report", ["costs", "transfer", "focus", "reconcile", "usage"])
def test_a_reversed_window_is_one_line(small_db, tmp_path, report):
    """--since after --until was an internal error (costs, transfer: a ValueError) or an empty report."""
    line = one_line_error(caa("report", report, "--since", "2026-11-20", "--until", "2026-11-01",
                              "--out", str(tmp_path / "r.csv"), "--db", str(small_db)))
    assert "--since 2026-11-20 is after --until 2026-11-01" in line and "fix:" in line, line
    assert not (tmp_path / "r.csv").exists()
