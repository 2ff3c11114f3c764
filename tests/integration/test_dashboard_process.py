"""`caa dashboard` under a service manager: a SIGTERM or SIGINT to the pid it was started as stops the
server it serves with (nothing left answering on the port, no orphan), and the exit is clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.support import ROOT, free_port
from tests.helpers import process_group


def _health(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_caa_dashboard_stops_the_server(tmp_path: Path, sig):
    (tmp_path / "caa.toml").write_text("")
    env = dict(os.environ, CAA_DB=str(tmp_path / "caa.duckdb"), CAA_CONFIG=str(tmp_path / "caa.toml"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process_group([sys.executable, "-m", "cli", "dashboard", "--port", str(port)], cwd=ROOT, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        deadline = time.monotonic() + 60
        while not _health(url):
            assert proc.poll() is None and time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.3)
        os.kill(proc.pid, sig)  # the pid the service manager knows, not its process group
        assert proc.wait(timeout=20) in (0, -sig, 128 + sig)
        assert not _health(url)  # nothing answers on the port any more
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)  # and nothing of its process group is left
