"""CloudTrail record shapes for the demo trails: identities, CodeArtifact events, other services, digests.

Pure builders: they read plan objects and return dicts (or bytes for digests); the trail writer in
`demo.trails` decides when, how often and where they are written. Shapes follow
/work/shared/CODEARTIFACT.md section 2.2: package-manager reads are `ReadFromRepository` with
`domainName/domainOwner/repositoryName/packageFormat/packageName[/packageNamespace][/packageVersion]`
and the asset file at the end of `additionalEventData.requestUri`; other API calls keep API key names.
"""

from __future__ import annotations

import base64
import hashlib
import time

from demo.traffic import CA, Principal, Stream

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
DENIED = ("User: {arn} is not authorized to perform: codeartifact:{action} on resource: {res} "
          "because no identity-based policy allows the codeartifact:{action} action")


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _ident_id(*parts: object, n: int = 17) -> str:
    raw = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).digest()
    return base64.b32encode(raw).decode()[:n]


def user_identity(p: Principal, day_start: int) -> dict:
    """The userIdentity block of `p` on one day (session credentials rotate daily)."""
    if p.kind == "IAMUser":
        return {"type": "IAMUser", "principalId": "AIDA" + _ident_id("user", p.arn), "arn": p.arn,
                "accountId": p.account, "accessKeyId": "AKIA" + _ident_id("key", p.arn, n=16), "userName": p.name}
    role_id = "AROA" + _ident_id("role", p.account, p.name)
    path = "aws-reserved/sso.amazonaws.com/" if p.name.startswith("AWSReservedSSO_") else ""
    created = day_start + int(3600 * (int(_ident_id("h", p.arn, day_start, n=2), 36) % 8))
    return {"type": "AssumedRole", "principalId": f"{role_id}:{p.session}", "arn": p.arn, "accountId": p.account,
            "accessKeyId": "ASIA" + _ident_id("sts", p.arn, day_start, n=16),
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id,
                                                 "arn": f"arn:aws:iam::{p.account}:role/{path}{p.name}",
                                                 "accountId": p.account, "userName": p.name},
                               "attributes": {"creationDate": iso(created), "mfaAuthenticated": "false"}}}


def tls(host: str) -> dict:
    return {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": host}


def read_params(s: Stream, version: str | None) -> dict:
    rp = {"domainName": s.domain, "domainOwner": s.owner, "repositoryName": s.repo, "packageFormat": s.fmt,
          "packageName": s.name}
    if s.ns:
        rp["packageNamespace"] = s.ns
    if version is not None:
        rp["packageVersion"] = version
    return rp


def request_uri(s: Stream, version: str | None = None, asset: str | None = None) -> str:
    """The package-manager URL path: metadata without a version, else the asset file of that version."""
    if s.fmt == "npm":
        base = f"/npm/{s.repo}/" + (f"@{s.ns}/{s.name}" if s.ns else s.name)
        return base if asset is None else f"{base}/-/{asset}"
    if s.fmt == "pypi":
        base = f"/pypi/{s.repo}/simple/{s.name}/"
        return base if asset is None else f"{base}{version}/{asset}"
    base = f"/maven/{s.repo}/{(s.ns or '').replace('.', '/')}/{s.name}"
    return f"{base}/maven-metadata.xml" if asset is None else f"{base}/{version}/{asset}"


def codeartifact(event_version: str, ident: dict, ts: str, region: str, ip: str, ua: str, name: str,
                 params: dict, extra: dict | None, request_id: str, event_id: str, read_only: bool,
                 recipient: str, tls_details: dict, error: tuple[str, str] | None = None) -> dict:
    """One CodeArtifact record with the full envelope; `error` is (errorCode, errorMessage)."""
    rec = {"eventVersion": event_version, "userIdentity": ident, "eventTime": ts, "eventSource": CA,
           "eventName": name, "awsRegion": region, "sourceIPAddress": ip, "userAgent": ua}
    if error is not None:
        rec["errorCode"], rec["errorMessage"] = error
    rec["requestParameters"] = params
    rec["responseElements"] = None
    if extra is not None:
        rec["additionalEventData"] = extra
    rec.update(requestID=request_id, eventID=event_id, readOnly=read_only, eventType="AwsApiCall",
               managementEvent=True, recipientAccountId=recipient, eventCategory="Management",
               tlsDetails=tls_details)
    return rec


def denied(p: Principal, action: str, resource: str) -> str:
    return DENIED.format(arn=p.arn, action=action, res=resource)


def api_params(s: Stream, name: str, version: str | None) -> dict:
    rp = {"domain": s.domain, "domainOwner": s.owner, "repository": s.repo, "format": s.fmt}
    if name == "ListPackages":
        return rp
    if s.ns:
        rp["namespace"] = s.ns
    rp["package"] = s.name
    if version is not None and name in ("DescribePackageVersion", "PublishPackageVersion"):
        rp["packageVersion"] = version
    return rp


def other_service(kind: int, p: Principal, ident: dict, ts: str, region: str, ip: str, request_id: str,
                  event_id: str, token: str) -> dict:
    """A non-CodeArtifact record (sts, s3, kms, ec2) that the collector must filter out."""
    a = p.account
    rec = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": ts}
    if kind == 0:
        role = f"arn:aws:iam::{a}:role/deploy-{token[:4].lower()}"
        rec.update(eventSource="sts.amazonaws.com", eventName="AssumeRole", awsRegion=region, sourceIPAddress=ip,
                   userAgent="aws-sdk-go-v2/1.24.1 os/linux lang/go#1.21.6 api/sts#1.26.7",
                   requestParameters={"roleArn": role, "roleSessionName": f"deploy-{token[4:12]}",
                                      "durationSeconds": 3600},
                   responseElements={"credentials": {"accessKeyId": "ASIA" + token[:16].upper(),
                                                     "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE",
                                                     "expiration": ts}},
                   requestID=request_id, eventID=event_id, readOnly=True,
                   resources=[{"accountId": a, "type": "AWS::IAM::Role", "ARN": role}],
                   eventType="AwsApiCall", managementEvent=True, recipientAccountId=a, eventCategory="Management")
    elif kind == 1:
        bucket = f"acme-build-cache-{a}"
        rec.update(eventSource="s3.amazonaws.com", eventName="GetObject", awsRegion=region, sourceIPAddress=ip,
                   userAgent="[aws-cli/2.15.10 Python/3.11.6 Linux/6.2.0 exe/x86_64 command/s3.cp]",
                   requestParameters={"bucketName": bucket, "Host": f"{bucket}.s3.{region}.amazonaws.com",
                                      "key": f"cache/{token[:2]}/{token}.tar.zst"},
                   responseElements=None,
                   additionalEventData={"bytesTransferredIn": 0, "bytesTransferredOut": 1048576},
                   requestID=request_id[:16].upper(), eventID=event_id, readOnly=True,
                   resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/cache/{token}.tar.zst"},
                              {"accountId": a, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}],
                   eventType="AwsApiCall", managementEvent=False, recipientAccountId=a, eventCategory="Data")
    elif kind == 2:
        key = f"arn:aws:kms:{region}:{a}:key/{event_id[::-1]}"
        rec.update(eventSource="kms.amazonaws.com", eventName="Decrypt", awsRegion=region, sourceIPAddress=ip,
                   userAgent="aws-sdk-java/2.21.0 Linux/5.15 OpenJDK_64-Bit_Server_VM/17.0.9+9",
                   requestParameters={"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, responseElements=None,
                   requestID=request_id, eventID=event_id, readOnly=True,
                   resources=[{"accountId": a, "type": "AWS::KMS::Key", "ARN": key}],
                   eventType="AwsApiCall", managementEvent=True, recipientAccountId=a, eventCategory="Management")
    else:
        rec.update(eventSource="ec2.amazonaws.com", eventName="DescribeInstances", awsRegion=region,
                   sourceIPAddress=ip, userAgent="aws-cli/2.15.10 Python/3.11.6 Linux/6.2.0 exe/x86_64",
                   requestParameters={"instancesSet": {}, "filterSet": {}}, responseElements=None,
                   requestID=request_id, eventID=event_id, readOnly=True, eventType="AwsApiCall",
                   managementEvent=True, recipientAccountId=a, eventCategory="Management")
    return rec


def digest(account: str, region: str, bucket: str, key: str, files: list[tuple[str, str, int, int]],
           start: int, end: int) -> dict:
    """A CloudTrail-Digest document (no Records) listing the log files delivered in [start, end)."""
    fp = hashlib.md5(f"{account}/{region}".encode()).hexdigest()  # noqa: S324 - a fingerprint, not security
    return {"awsAccountId": account, "digestStartTime": iso(start), "digestEndTime": iso(end),
            "digestS3Bucket": bucket, "digestS3Object": key, "digestPublicKeyFingerprint": fp,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": iso(max((f[3] for f in files), default=end)),
            "oldestEventTime": iso(min((f[2] for f in files), default=start)),
            "previousDigestS3Bucket": None, "previousDigestS3Object": None, "previousDigestHashValue": None,
            "previousDigestHashAlgorithm": None, "previousDigestSignature": None,
            "logFiles": [{"s3Bucket": bucket, "s3Object": k, "hashValue": h, "hashAlgorithm": "SHA-256",
                          "oldestEventTime": iso(lo), "newestEventTime": iso(hi)} for k, h, lo, hi in files]}
