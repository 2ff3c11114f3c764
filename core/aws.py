"""AWS sessions and clients: one session per account (assuming its role), botocore retries, and
translation of AWS failures into one-line errors that name the missing IAM action and the fix.

Credentials come only from boto3's default chain or from sts:AssumeRole, stay in memory and are
never logged or written anywhere.

Reads: the settings' accounts, roles and endpoints (never storing credentials). Writes nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from core.errors import AwsAccessError, CaaError, CredentialsError

if TYPE_CHECKING:  # (core.settings needs nothing from here; the names are for annotations)
    import boto3
    from botocore.config import Config

    from core.settings import Settings

# boto3 and botocore's client machinery (botocore.config) are imported when the first client is made, not with
# this module: every caa command imports it (the collectors' Scope and aws_errors), and most never call AWS (a
# local trail folder, the dashboard, a report). That import took 90 ms of a collector's one-core start;
# botocore's exceptions, imported here, take a few ms.

# A call that cannot connect at all (no route, no DNS answer, a refused or unanswered connection) is tried
# CONNECT_ATTEMPTS times, each connection given CONNECT_TIMEOUT_S, whatever aws.max_attempts allows for
# throttling and server errors: with no network, each collector's first call went through all 10 attempts and
# their backoff, so `caa collect` took 97 s to print its four "cannot reach" lines (a dropped connection would
# have waited botocore's 60 s per attempt). Two retries still ride out a blip in a long backfill.
CONNECT_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 10
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)

# IAM action for an API operation where it is not simply "<prefix>:<OperationName>".
IAM_PREFIX = {"monitoring": "cloudwatch", "cloudwatch": "cloudwatch"}
IAM_ACTION_OVERRIDES = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "HeadObject"): "s3:GetObject",
}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
          "UnauthorizedException", "UnrecognizedClientException"}
_KMS_ACTION = re.compile(r"\bkms:[A-Za-z*]+")  # in the message of an S3 read that the object's KMS key denied
_KMS_KEY = re.compile(r"\barn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId",
           "TokenRefreshRequired"}


@dataclass(frozen=True)
class Scope:
    """Where one collector run looks: an account and region, or a trail source."""

    account_id: str | None = None
    region: str | None = None
    role_arn: str | None = None
    source: str | None = None

    @property
    def label(self) -> str:
        parts = []
        if self.source:
            parts.append(f"source={self.source}")
        if self.account_id:
            parts.append(f"account={self.account_id}")
        if self.region:
            parts.append(f"region={self.region}")
        return " ".join(parts) or "all"


def codeartifact_arn(account: str, region: str, domain: str, repository: str | None = None) -> str:
    """A domain's ARN, or a repository's when `repository` is given (the resource ids of the CUR 2.0 bill)."""
    if repository:
        return f"arn:aws:codeartifact:{region}:{account}:repository/{domain}/{repository}"
    return f"arn:aws:codeartifact:{region}:{account}:domain/{domain}"


def iam_action(service: str, operation: str) -> str:
    return IAM_ACTION_OVERRIDES.get((service, operation), f"{IAM_PREFIX.get(service, service)}:{operation}")


class Clients:
    """Makes boto3 clients per (account, region, service); assumes each account's role once."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._sessions: dict[tuple[str | None, str | None], boto3.session.Session] = {}
        self._lock = threading.Lock()

    def config(self) -> Config:
        from botocore.config import Config

        aws = self.settings.aws
        return Config(retries={"mode": aws.retry_mode, "max_attempts": aws.max_attempts},
                      connect_timeout=CONNECT_TIMEOUT_S, user_agent_extra="caa/0.1", max_pool_connections=32)

    def session(self, scope: Scope) -> boto3.session.Session:
        key = (scope.account_id, scope.role_arn)
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = self._make_session(scope)
            return self._sessions[key]

    def _make_session(self, scope: Scope) -> boto3.session.Session:
        base = default_session(scope)
        if not scope.role_arn:
            return base
        import boto3

        sts = give_up_unreachable(base.client("sts", config=self.config(), endpoint_url=self.settings.aws.endpoints.get(
            "sts"), region_name=scope.region or base.region_name or "us-east-1"))
        with aws_errors(scope, "sts"):
            creds = sts.assume_role(RoleArn=scope.role_arn, RoleSessionName="caa-collect")["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def client(self, scope: Scope, service: str, region: str | None = None) -> Any:
        session = self.session(scope)
        region = region or scope.region or session.region_name or "us-east-1"
        try:
            return give_up_unreachable(session.client(service, region_name=region, config=self.config(),
                                                      endpoint_url=self.settings.aws.endpoints.get(service)))
        except NoRegionError:
            raise CaaError("no AWS region configured", where=scope.label,
                           fix="set regions in caa.toml [[accounts]] or AWS_DEFAULT_REGION") from None


def give_up_unreachable(client: Any) -> Any:
    """`client`, whose calls stop retrying after CONNECT_ATTEMPTS attempts that could not connect (botocore's
    retry handler would go on to aws.max_attempts): a handler that runs before it and raises the error."""
    def stop(attempts: int, caught_exception: Exception | None = None, **_: Any) -> None:
        if isinstance(caught_exception, _UNREACHABLE) and attempts >= CONNECT_ATTEMPTS:
            raise caught_exception

    client.meta.events.register_first(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}", stop)
    return client


def default_session(scope: Scope | None = None) -> boto3.session.Session:
    """boto3's session from the default chain (AWS_PROFILE, the environment, SSO, an instance role). Making
    it reads the profile, before any call: a missing one is a one-line error here."""
    import boto3

    with aws_errors(scope or Scope(), "sts"):
        return boto3.session.Session()


def _role_text(scope: Scope) -> str:
    return f"role {scope.role_arn}" if scope.role_arn else "the caller's credentials"


class aws_errors:  # noqa: N801 - used as `with aws_errors(scope, "s3"):`
    """Turn botocore failures inside the block into one-line CaaErrors with the fix."""

    def __init__(self, scope: Scope, service: str, what: str = ""):
        self.scope, self.service, self.what = scope, service, what

    def __enter__(self) -> aws_errors:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, CaaError):
            return False
        err = translate(exc, self.scope, self.service, self.what)
        if err is None:
            return False
        raise err from None


def translate(exc: BaseException, scope: Scope, service: str, what: str = "") -> CaaError | None:
    where = scope.label + (f" {what}" if what else "")
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        op = exc.operation_name
        if code in DENIED and (kms := _KMS_ACTION.search(exc.response.get("Error", {}).get("Message", ""))):
            # S3 reads of an SSE-KMS object (an organisation trail, a billing export) are denied by the key's
            # policy or the role's, not by s3:GetObject: say which KMS action on which key
            key = _KMS_KEY.search(exc.response["Error"]["Message"])
            on = key.group(0) if key else "the KMS key that encrypts the objects"
            return AwsAccessError(f"{op} was denied ({code}): the objects are encrypted with a KMS key", where=where,
                                  fix=f"allow {kms.group(0)} on {on} for {_role_text(scope)}, in its IAM policy "
                                      "and in the key's policy (README: least privilege)")
        if code in DENIED:
            action = iam_action(service, op)
            return AwsAccessError(f"{op} was denied ({code})", where=where,
                                  fix=f"allow {action} for {_role_text(scope)} (see iam/caa-collect.json)")
        if code in EXPIRED:
            return CredentialsError(f"AWS credentials expired or are invalid ({code})", where=where,
                                  fix="refresh them (e.g. `aws sso login`) and run again; "
                                      "committed data is kept and the re-run resumes")
        if code == "NoSuchBucket":  # a typo in a source, or a bucket of another account or partition
            bucket = exc.response.get("Error", {}).get("BucketName") or "of the source"
            return AwsAccessError(f"the S3 bucket {bucket} does not exist ({op})", where=where,
                                  fix="check the bucket name in the source (caa.toml sources, or --source "
                                      "s3://bucket/prefix)")
        msg = exc.response.get("Error", {}).get("Message", "")
        return AwsAccessError(f"{op} failed: {code} {msg}".strip(), where=where,
                              fix="check the resource names in caa.toml; run with --debug for details")
    if isinstance(exc, ProfileNotFound):
        return CredentialsError(f"the AWS profile {exc.kwargs.get('profile')!r} is not configured", where="AWS_PROFILE",
                                fix="set AWS_PROFILE to a profile of ~/.aws/config (`aws configure list-profiles`), "
                                    "or unset it to use the default chain")
    if isinstance(exc, NoCredentialsError):
        return CredentialsError("no AWS credentials found", where=where,
                              fix="configure a profile (AWS_PROFILE), SSO, environment variables or an instance role")
    if isinstance(exc, _UNREACHABLE):
        return AwsAccessError(f"cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}", where=where,
                              fix="check the network, the region and any [aws] endpoints in caa.toml")
    if isinstance(exc, BotoCoreError):
        return AwsAccessError(f"AWS call failed: {exc}", where=where, fix="run with --debug for details")
    return None


def paginate(client: Any, operation: str, result_key: str, **params: Any) -> Iterator[Any]:
    """Yield every item of every page of a botocore paginator."""
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get(result_key, [])
