"""Where a request came from: AWS's published IP ranges (the shipped, dated file and `caa refresh ip-ranges`)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from analytics import ip_ranges

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("ip", "region", "expected"), [
    ("52.94.0.5", "us-east-1", "same_region"),  # an AWS prefix in us-east-1
    ("44.230.10.90", "us-east-1", "other_region"),  # EC2 in us-west-2
    ("2600:1f18::1", "us-east-1", "same_region"),  # IPv6, us-east-1
    ("3.5.140.1", "eu-west-1", "other_region"),  # ap-northeast-2
    ("8.8.8.8", "us-east-1", "internet"),
    ("203.0.113.10", "us-east-1", "internet"),  # a documentation address stands for a public host
    ("10.20.3.91", "us-east-1", "private"),  # a VPC endpoint
    ("AWS Internal", "us-east-1", "aws_internal"),
    ("codeartifact.amazonaws.com", "us-east-1", "aws_internal"),
])
def test_a_source_ip_is_classed_against_the_repositorys_region(ip, region, expected):
    assert ip_ranges.load().classify(ip, region) == expected


def test_the_shipped_file_is_awss_own_and_dated():
    ranges = ip_ranges.load()
    assert ranges.path.endswith("aws-ip-ranges.json.gz") and ranges.create_date.startswith("20")
    assert sum(map(len, ranges.v4.values())) > 5_000 and sum(map(len, ranges.v6.values())) > 1_000


@pytest.fixture
def served(tmp_path):
    """A local HTTP server over tmp_path (stands in for ip-ranges.amazonaws.com)."""
    server = HTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_refresh_keeps_a_newer_copy_next_to_the_store_and_it_wins(served, tmp_path):
    folder, url = served
    doc = {"syncToken": "1", "createDate": "2099-01-01-00-00-00",
           "prefixes": [{"ip_prefix": "8.8.8.0/24", "region": "us-east-1", "service": "EC2", "network_border_group": "x"}],
           "ipv6_prefixes": []}
    (folder / "ip-ranges.json").write_text(json.dumps(doc))
    db = tmp_path / "store" / "caa.duckdb"
    out = subprocess.run([sys.executable, "-m", "cli", "refresh", "ip-ranges", "--url", f"{url}/ip-ranges.json",
                          "--db", str(db)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2099-01-01-00-00-00" in out.stdout
    kept = json.loads(gzip.decompress(ip_ranges.refreshed_path(db).read_bytes()))
    assert kept["prefixes"] == [{"ip_prefix": "8.8.8.0/24", "region": "us-east-1", "service": "EC2"}]
    assert ip_ranges.load(db).classify("8.8.8.8", "us-east-1") == "same_region"  # the newer file is used


def test_a_download_that_is_not_the_ranges_is_one_line_and_keeps_the_old_file(served, tmp_path):
    folder, url = served
    (folder / "ip-ranges.json").write_text("<html>captive portal</html>")
    db = tmp_path / "store" / "caa.duckdb"
    out = subprocess.run([sys.executable, "-m", "cli", "refresh", "ip-ranges", "--url", f"{url}/ip-ranges.json",
                          "--db", str(db)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "not JSON" in out.stderr and "fix:" in out.stderr
    assert not ip_ranges.refreshed_path(db).exists()
