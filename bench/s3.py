"""A moto S3 server in its own process for `make bench`: upload trail files, measure raw GETs, count GETs.

Reads trail files; writes the server's request log (to count the collector's GETs) under data/bench/work/.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from bench import floors

BUCKET = "acme-cloudtrail-logs"
PREFIX = "bench"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
CA = "codeartifact.amazonaws.com"


def _die_with_the_bench() -> None:
    """In the server's child before exec (Linux): SIGTERM when the bench process that started it dies, also by
    SIGKILL, which skips stop(); elsewhere nothing."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class MotoS3:
    def __init__(self, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **CREDS}
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=_die_with_the_bench)  # only a prctl between fork and exec
        self.env = {**CREDS, "CAA_AWS__ENDPOINTS": json.dumps({"s3": self.url})}
        self.source = f"s3://{BUCKET}/{PREFIX}"
        self.client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        for _ in range(100):
            try:
                self.client.list_buckets()
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        self.keys: list[str] = []

    def upload(self, root: Path, files: list[Path]) -> dict:
        self.client.create_bucket(Bucket=BUCKET)
        ids: set[str] = set()
        for f in files:
            recs = json.loads(gzip.decompress(f.read_bytes()))["Records"]
            ids.update(r["eventID"] for r in recs if r.get("eventSource") == CA)

        def put(f: Path) -> int:
            key = f"{PREFIX}/{f.relative_to(root)}"
            data = f.read_bytes()
            self.client.put_object(Bucket=BUCKET, Key=key, Body=data)
            return len(data)

        with ThreadPoolExecutor(8) as pool:
            total = sum(pool.map(put, files))
        self.keys = [f"{PREFIX}/{f.relative_to(root)}" for f in files]
        return {"events_unique": len(ids), "gz_bytes": total}

    def get_floor(self) -> dict:
        return floors.s3_get_floor(self.client, BUCKET, self.keys)

    def gets(self) -> int:
        """GETs of trail objects the server has answered so far (from its request log)."""
        self._log.flush()
        return sum(1 for ln in self.log_path.read_text(errors="replace").splitlines()
                   if '"GET /' in ln and ".json.gz" in ln)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()
