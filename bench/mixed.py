"""The mixed trail for `make bench`: CodeArtifact is 5% of the records (bench-only generator).

For each pure trail file: the same file with 3 records of other services (sts AssumeRole, s3 GetObject,
kms Decrypt, ec2 DescribeInstances, about 1.2-1.6 KB each, as in a real management + data-event trail)
after each of its records, and 4 more files of the same account, region and day holding other services
only (4x the mixed file's records each). One in 10 of those holds a KMS GenerateDataKey that CodeArtifact
made on the caller's behalf: it mentions codeartifact.amazonaws.com but is no CodeArtifact event.

Reads pure trail files; writes the mixed tree; returns its ground truth (unique CodeArtifact events).
"""

from __future__ import annotations

import multiprocessing
import random
import zlib
from pathlib import Path

import orjson

CA = "codeartifact.amazonaws.com"
OTHER_PER_RECORD = 3  # in the mixed file
EXTRA_FILES = 4  # other-services-only files per pure file, each 4x the mixed file's records
_MARK = "@@{}@@"


def _ident(acct: str, role: str, session: str) -> dict:
    rid = "AROA" + (acct * 2)[:17]
    return {"type": "AssumedRole", "principalId": f"{rid}:{session}",
            "arn": f"arn:aws:sts::{acct}:assumed-role/{role}/{session}", "accountId": acct,
            "accessKeyId": "ASIA" + "@@TOK@@"[:7] + "EXAMPLE", "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": rid, "arn": f"arn:aws:iam::{acct}:role/{role}",
                                  "accountId": acct, "userName": role},
                "attributes": {"creationDate": "2025-01-01T00:00:00Z", "mfaAuthenticated": "false"}}}


def _templates(acct: str, region: str) -> list[list[bytes]]:
    """Records with @@TS@@/@@EID@@/@@RID@@/@@TOK@@ holes, split at the holes (filled by joining)."""
    ts, eid, rid, tok = (_MARK.format(k) for k in ("TS", "EID", "RID", "TOK"))
    recs = []
    for role, session in (("deploy", "gha-run"), ("platform-admin", "alice"), ("batch", "etl-nightly")):
        ident = _ident(acct, role, session)
        base = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": ts, "awsRegion": region,
                "sourceIPAddress": "203.0.113.24", "requestID": rid, "eventID": eid, "readOnly": True,
                "eventType": "AwsApiCall", "recipientAccountId": acct}
        recs.append(dict(base, eventSource="sts.amazonaws.com", eventName="AssumeRole",
                         userAgent="aws-sdk-go-v2/1.24.1 os/linux lang/go#1.21.6 api/sts#1.26.7",
                         requestParameters={"roleArn": f"arn:aws:iam::{acct}:role/deploy-{tok}",
                                            "roleSessionName": f"deploy-{tok}", "durationSeconds": 3600},
                         responseElements={"credentials": {"accessKeyId": f"ASIA{tok}", "expiration": ts,
                                                           "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE" + tok}},
                         resources=[{"accountId": acct, "type": "AWS::IAM::Role",
                                     "ARN": f"arn:aws:iam::{acct}:role/deploy-{tok}"}],
                         managementEvent=True, eventCategory="Management"))
        bucket = f"acme-build-cache-{acct}"
        recs.append(dict(base, eventSource="s3.amazonaws.com", eventName="GetObject",
                         userAgent="[aws-cli/2.15.10 Python/3.11.6 Linux/6.2.0 exe/x86_64 command/s3.cp]",
                         requestParameters={"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com",
                                            "key": f"cache/{tok}.tar.zst"}, responseElements=None,
                         additionalEventData={"bytesTransferredIn": 0, "bytesTransferredOut": 1048576,
                                              "x-amz-id-2": f"{tok}{tok}"},
                         resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/cache/{tok}.tar.zst"},
                                    {"accountId": acct, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
                         managementEvent=False, eventCategory="Data"))
        recs.append(dict(base, eventSource="kms.amazonaws.com", eventName="Decrypt",
                         userAgent="aws-sdk-java/2.21.0 Linux/5.15 OpenJDK_64-Bit_Server_VM/17.0.9+9",
                         requestParameters={"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                                            "encryptionContext": {"aws:ssm:parameter": f"/app/{tok}"}},
                         responseElements=None,
                         resources=[{"accountId": acct, "type": "AWS::KMS::Key",
                                     "ARN": f"arn:aws:kms:{region}:{acct}:key/{eid}"}],
                         managementEvent=True, eventCategory="Management"))
        recs.append(dict(base, eventSource="ec2.amazonaws.com", eventName="DescribeInstances",
                         userAgent="aws-cli/2.15.10 Python/3.11.6 Linux/6.2.0 exe/x86_64",
                         requestParameters={"instancesSet": {"items": [{"instanceId": f"i-{tok}"}]}, "filterSet": {}},
                         responseElements=None, managementEvent=True, eventCategory="Management"))
    return [_split(orjson.dumps(r)) for r in recs]


def _kms_by_codeartifact(acct: str, region: str) -> list[bytes]:
    rec = {"eventVersion": "1.09", "userIdentity": {"type": "AWSService", "invokedBy": CA},
           "eventTime": _MARK.format("TS"), "eventSource": "kms.amazonaws.com", "eventName": "GenerateDataKey",
           "awsRegion": region, "sourceIPAddress": CA, "userAgent": CA,
           "requestParameters": {"keySpec": "AES_256", "encryptionContext": {
               "aws:codeartifact:domain-arn": f"arn:aws:codeartifact:{region}:{acct}:domain/acme"}},
           "responseElements": None, "requestID": _MARK.format("RID"), "eventID": _MARK.format("EID"),
           "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": acct,
           "eventCategory": "Management", "sharedEventID": _MARK.format("TOK")}
    return _split(orjson.dumps(rec))


def _split(raw: bytes) -> list[bytes]:
    return raw.split(b"@@")  # even items are literal text, odd items name a hole


class _Filler:
    def __init__(self, seed: int):
        self.rnd = random.Random(seed)

    def uuid(self) -> bytes:
        h = f"{self.rnd.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}".encode()

    def fill(self, parts: list[bytes], ts: bytes) -> bytes:
        vals = {b"TS": ts, b"EID": self.uuid(), b"RID": self.uuid(),
                b"TOK": f"{self.rnd.getrandbits(64):016X}".encode()}
        return b"".join(p if i % 2 == 0 else vals[p] for i, p in enumerate(parts))


def _gzip(data: bytes) -> bytes:
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _one(task: tuple[int, str, str, str]) -> list[str]:
    i, src_root, path, out_root = task
    src = Path(path)
    rel = src.relative_to(src_root)
    acct, region = src.name.split("_")[0], src.name.split("_")[2]
    tmpl, kms = _templates(acct, region), _kms_by_codeartifact(acct, region)
    fill = _Filler(i)
    recs = orjson.loads(zlib.decompress(src.read_bytes(), 31))["Records"]
    ids = [r["eventID"] for r in recs if r.get("eventSource") == CA]
    times = [r["eventTime"].encode() for r in recs]
    body = []
    for r, ts in zip(recs, times, strict=True):
        body.append(orjson.dumps(r))
        body += [fill.fill(tmpl[int(fill.rnd.random() * len(tmpl))], ts) for _ in range(OTHER_PER_RECORD)]
    dest = Path(out_root) / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(_gzip(b'{"Records":[' + b",".join(body) + b"]}"))
    per = len(body)
    for k in range(EXTRA_FILES):
        ts = sorted(times[int(fill.rnd.random() * len(times))] for _ in range(per))
        extra = [fill.fill(tmpl[int(fill.rnd.random() * len(tmpl))], t) for t in ts]
        if fill.rnd.random() < 0.1:
            extra.insert(len(extra) // 2, fill.fill(kms, ts[len(ts) // 2]))
        name = src.name.split("_")
        name[-1] = f"X{k}{name[-1][2:]}"
        (dest.parent / "_".join(name)).write_bytes(_gzip(b'{"Records":[' + b",".join(extra) + b"]}"))
    return ids


def write(src_root: Path, files: list[Path], out_root: Path, workers: int = 2) -> dict:
    tasks = [(i, str(src_root), str(p), str(out_root)) for i, p in enumerate(files)]
    with multiprocessing.get_context().Pool(workers) as pool:
        ids = set()
        for got in pool.imap_unordered(_one, tasks, chunksize=4):
            ids.update(got)
    return {"events_unique": len(ids), "pure_files": len(files), "files": len(files) * (1 + EXTRA_FILES)}
