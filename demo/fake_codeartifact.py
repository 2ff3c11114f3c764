"""A CodeArtifact endpoint served from the demo Estate, inside a real boto3 client, with no network.

moto has no CodeArtifact, so `caa demo` (and the inventory tests) use this instead. It is product code.
`FakeCodeArtifact.attach(client)` registers two handlers on a real `boto3.client("codeartifact")`:

- `before-parameter-build.codeartifact` records the operation name and its API parameters in the call's
  request context (one dict per call, so a client shared between threads is fine);
- `before-send.codeartifact` builds the response from the Estate as it was at `as_of`, validates it
  against the operation's output shape exactly as botocore's Stubber does, serialises it as the
  rest-json body (timestamps as epoch seconds) and returns it as the HTTP response.

`before-send` runs inside botocore's retry loop, so an injected 429 ThrottlingException is really retried
by the client's retry mode, and errors come back as the modeled exceptions (ThrottlingException 429,
AccessDeniedException 403, ResourceNotFoundException 404). Everything else - parameter validation,
serialisation, endpoint resolution, pagination, parsing - is botocore's own code. Requests are left
unsigned (`choose-signer`), so no credentials are needed.

Reads: the Estate (demo.model). Writes: nothing; counts calls in `calls` and `throttled`.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any

import botocore
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from core.aws import Clients, Scope
from core.settings import Settings
from demo.model import Domain, Estate, Package, Repository, Version

PAGE_SIZE = 50
_CTX_KEY = "caa_fake_codeartifact"
EXTERNAL_FORMATS = {
    "public:npmjs": "npm", "public:pypi": "pypi", "public:maven-central": "maven",
    "public:maven-googleandroid": "maven", "public:maven-gradleplugins": "maven",
    "public:maven-commonsware": "maven", "public:maven-clojars": "maven", "public:nuget-org": "nuget",
    "public:crates-io": "cargo", "public:ruby-gems-org": "ruby",
}


class FakeResponseError(Exception):
    """The fake built a response that does not match the botocore model (a bug in the fake or estate)."""


class _NotFound(Exception):
    pass


class _Body:
    """The `raw` of an AWSResponse: AWSResponse.content joins raw.stream()."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self.data


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    return int(base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)[1])


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _domain_arn(d: Domain) -> str:
    return f"arn:aws:codeartifact:{d.region}:{d.owner}:domain/{d.name}"


def _repo_arn(d: Domain, r: Repository) -> str:
    return f"arn:aws:codeartifact:{d.region}:{d.owner}:repository/{d.name}/{r.name}"


def _with_ns(body: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    if namespace is not None:
        body["namespace"] = namespace
    return body


class FakeCodeArtifact:
    """Answer CodeArtifact API calls of attached boto3 clients from `estate` as it was at `as_of`.

    throttle_rate: fraction of calls answered with ThrottlingException (seeded RNG).
    deny: operation names (e.g. {"ListPackages"}) answered with AccessDeniedException.
    account_id/region: whose domains list_domains shows, unless attach() is given them.
    """

    def __init__(self, estate: Estate, as_of: datetime, throttle_rate: float = 0.0, seed: int = 0,
                 deny: Iterable[str] = frozenset(), page_size: int = PAGE_SIZE,
                 account_id: str | None = None, region: str | None = None):
        self.estate = estate
        self.as_of = as_of
        self.throttle_rate = throttle_rate
        self.deny = frozenset(deny)
        self.page_size = page_size
        self.account_id = account_id
        self.region = region
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._ops: dict[str, Callable[[dict[str, Any], str, str], dict[str, Any]]] = {
            "ListDomains": self._list_domains,
            "DescribeDomain": self._describe_domain,
            "ListRepositoriesInDomain": self._list_repositories_in_domain,
            "DescribeRepository": self._describe_repository,
            "ListTagsForResource": self._list_tags_for_resource,
            "ListPackages": self._list_packages,
            "ListPackageVersions": self._list_package_versions,
            "DescribePackageVersion": self._describe_package_version,
            "ListPackageVersionAssets": self._list_package_version_assets,
            "ListPackageVersionDependencies": self._list_package_version_dependencies,
        }

    # -- wiring ---------------------------------------------------------------------------------------

    def attach(self, client: Any, account_id: str | None = None, region: str | None = None) -> Any:
        """Make `client` (a boto3 codeartifact client) answer from the estate. Returns the client."""
        account = account_id or self.account_id or (self.estate.accounts[0] if self.estate.accounts else "")
        region = region or self.region or client.meta.region_name
        events = client.meta.events
        events.register("before-parameter-build.codeartifact", _remember_call)
        events.register("choose-signer.codeartifact", _unsigned)
        events.register("before-send.codeartifact",
                        partial(self._send, account_id=account, region=region,
                                service_model=client.meta.service_model))
        return client

    def _send(self, request: Any, account_id: str, region: str, service_model: Any, **_: Any) -> AWSResponse:
        op_name, params = request.context[_CTX_KEY]
        with self._lock:
            self.calls[op_name] += 1
            throttle = self.throttle_rate > 0 and self._rng.random() < self.throttle_rate
            if throttle:
                self.throttled[op_name] += 1
        if op_name in self.deny:
            return _error(request, 403, "AccessDeniedException",
                          f"User: arn:aws:sts::{account_id}:assumed-role/caa-collect/caa is not authorized to "
                          f"perform: codeartifact:{op_name} because no identity-based policy allows it")
        if throttle:
            return _error(request, 429, "ThrottlingException", "Rate exceeded")
        handler = self._ops.get(op_name)
        if handler is None:
            raise NotImplementedError(f"the fake CodeArtifact does not implement {op_name}")
        try:
            body = handler(params, account_id, region)
        except _NotFound as e:
            return _error(request, 404, "ResourceNotFoundException", str(e))
        output_shape = service_model.operation_model(op_name).output_shape
        try:
            validate_parameters(body, output_shape)
        except ParamValidationError as e:
            raise FakeResponseError(f"invalid {op_name} response: {e}") from None
        data = json.dumps(body, default=_json_default).encode()
        headers = HeadersDict({"content-type": "application/json", "content-length": str(len(data)),
                               "x-amzn-requestid": f"fake-{op_name}"})
        return AWSResponse(request.url, 200, headers, _Body(data))

    # -- estate lookups ------------------------------------------------------------------------------

    def _domain(self, params: dict[str, Any], account_id: str, region: str) -> Domain:
        owner = params.get("domainOwner") or account_id
        d = self.estate.domain(owner, region, params["domain"])
        if d is None or d.created_at > self.as_of:
            raise _NotFound(f"Domain {params['domain']} not found in account {owner}")
        return d

    def _repo(self, params: dict[str, Any], account_id: str, region: str) -> tuple[Domain, Repository]:
        d = self._domain(params, account_id, region)
        for r in d.repositories:
            if r.name == params["repository"] and r.created_at <= self.as_of:
                return d, r
        raise _NotFound(f"Repository {params['repository']} not found in domain {d.name}")

    def _visible(self, pkg: Package) -> list[Version]:
        return [v for v in pkg.versions if v.published_at <= self.as_of]

    def _package(self, params: dict[str, Any], account_id: str,
                 region: str) -> tuple[Domain, Repository, Package]:
        d, r = self._repo(params, account_id, region)
        for p in r.packages:
            if (p.format == params["format"] and p.namespace == params.get("namespace")
                    and p.name == params["package"] and self._visible(p)):
                return d, r, p
        raise _NotFound(f"Package {params['package']} not found in repository {r.name}")

    def _version(self, params: dict[str, Any], account_id: str,
                 region: str) -> tuple[Domain, Repository, Package, Version]:
        d, r, p = self._package(params, account_id, region)
        for v in self._visible(p):
            if v.version == params["packageVersion"]:
                return d, r, p, v
        raise _NotFound(f"Package version {p.name} {params['packageVersion']} not found")

    def _page(self, items: list[Any], params: dict[str, Any], key: str, body: dict[str, Any]) -> dict[str, Any]:
        size = params.get("maxResults") or self.page_size
        start = _offset(params.get("nextToken"))
        body[key] = items[start:start + size]
        if start + size < len(items):
            body["nextToken"] = _token(start + size)
        return body

    def _external_connection(self, d: Domain, r: Repository, seen: frozenset[str] = frozenset()) -> str | None:
        """The external connection a version reached `r` through: its own, else its upstreams'."""
        if r.external_connection:
            return r.external_connection
        by_name = {x.name: x for x in d.repositories}
        for name in r.upstreams:
            up = by_name.get(name)
            if up is not None and name not in seen:
                found = self._external_connection(d, up, seen | {r.name})
                if found:
                    return found
        return None

    def _origin(self, d: Domain, r: Repository, v: Version) -> dict[str, Any]:
        if v.origin_type == "INTERNAL":
            return {"originType": "INTERNAL", "domainEntryPoint": {"repositoryName": r.name}}
        conn = self._external_connection(d, r)
        origin: dict[str, Any] = {"originType": v.origin_type}
        if conn:
            origin["domainEntryPoint"] = {"externalConnectionName": conn}
        return origin

    # -- operations ----------------------------------------------------------------------------------

    def _domain_summary(self, d: Domain) -> dict[str, Any]:
        return {"name": d.name, "owner": d.owner, "arn": _domain_arn(d), "status": "Active",
                "createdTime": d.created_at, "encryptionKey": d.encryption_key}

    def _list_domains(self, params: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
        items = [self._domain_summary(d) for d in self.estate.domains
                 if d.owner == account_id and d.region == region and d.created_at <= self.as_of]
        return self._page(items, params, "domains", {})

    def _describe_domain(self, params: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
        d = self._domain(params, account_id, region)
        desc = self._domain_summary(d)
        desc.update(repositoryCount=sum(r.created_at <= self.as_of for r in d.repositories),
                    assetSizeBytes=d.asset_size_bytes(self.as_of),
                    s3BucketArn=f"arn:aws:s3:::assets-{d.owner}-{d.region}-{d.name}")
        return {"domain": desc}

    def _repo_summary(self, d: Domain, r: Repository) -> dict[str, Any]:
        return {"name": r.name, "administratorAccount": r.administrator_account, "domainName": d.name,
                "domainOwner": d.owner, "arn": _repo_arn(d, r), "description": r.description,
                "createdTime": r.created_at}

    def _list_repositories_in_domain(self, params: dict[str, Any], account_id: str,
                                     region: str) -> dict[str, Any]:
        d = self._domain(params, account_id, region)
        admin, prefix = params.get("administratorAccount"), params.get("repositoryPrefix", "")
        items = [self._repo_summary(d, r) for r in d.repositories
                 if r.created_at <= self.as_of and r.name.startswith(prefix)
                 and admin in (None, r.administrator_account)]
        return self._page(items, params, "repositories", {})

    def _describe_repository(self, params: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
        d, r = self._repo(params, account_id, region)
        desc = self._repo_summary(d, r)
        desc["upstreams"] = [{"repositoryName": u} for u in r.upstreams]
        desc["externalConnections"] = []
        if r.external_connection:
            desc["externalConnections"] = [{
                "externalConnectionName": r.external_connection,
                "packageFormat": EXTERNAL_FORMATS.get(r.external_connection, "generic"),
                "status": "Available"}]
        return {"repository": desc}

    def _list_tags_for_resource(self, params: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
        arn = params["resourceArn"]
        for d in self.estate.domains:
            if arn == _domain_arn(d):
                return {"tags": []}
            for r in d.repositories:
                if arn == _repo_arn(d, r) and r.created_at <= self.as_of:
                    return {"tags": [{"key": k, "value": v} for k, v in sorted(r.tags.items())]}
        raise _NotFound(f"Resource {arn} not found")

    def _list_packages(self, params: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
        _, r = self._repo(params, account_id, region)
        items = []
        for p in r.packages:
            if not self._visible(p):
                continue
            if params.get("format") not in (None, p.format) or params.get("namespace") not in (None, p.namespace):
                continue
            if not p.name.startswith(params.get("packagePrefix", "")):
                continue
            if params.get("publish") not in (None, p.origin_publish):
                continue
            if params.get("upstream") not in (None, p.origin_upstream):
                continue
            items.append(_with_ns({"format": p.format, "package": p.name, "originConfiguration": {
                "restrictions": {"publish": p.origin_publish, "upstream": p.origin_upstream}}}, p.namespace))
        return self._page(items, params, "packages", {})

    def _list_package_versions(self, params: dict[str, Any], account_id: str, region: str) -> dict[str, Any]:
        d, r, p = self._package(params, account_id, region)
        versions = [v for v in self._visible(p) if params.get("status") in (None, v.status)
                    and params.get("originType") in (None, v.origin_type)]
        if params.get("sortBy") == "PUBLISHED_TIME":
            versions.sort(key=lambda v: v.published_at, reverse=True)
        items = [{"version": v.version, "revision": v.revision, "status": v.status,
                  "origin": self._origin(d, r, v)} for v in versions]
        body = _with_ns({"format": p.format, "package": p.name}, p.namespace)
        published = [v for v in self._visible(p) if v.status == "Published"]
        if published:
            body["defaultDisplayVersion"] = max(published, key=lambda v: v.published_at).version
        return self._page(items, params, "versions", body)

    def _describe_package_version(self, params: dict[str, Any], account_id: str,
                                  region: str) -> dict[str, Any]:
        d, r, p, v = self._version(params, account_id, region)
        desc = _with_ns({"format": p.format, "packageName": p.name, "displayName": p.name,
                         "version": v.version, "publishedTime": v.published_at, "licenses": [],
                         "revision": v.revision, "status": v.status, "origin": self._origin(d, r, v)},
                        p.namespace)
        return {"packageVersion": desc}

    def _list_package_version_assets(self, params: dict[str, Any], account_id: str,
                                     region: str) -> dict[str, Any]:
        _, _, p, v = self._version(params, account_id, region)
        assets = [] if v.status == "Disposed" else v.assets  # disposing a version deletes its assets
        items = [{"name": a.name, "size": a.size_bytes, "hashes": {"SHA-256": a.sha256}} for a in assets]
        body = _with_ns({"format": p.format, "package": p.name, "version": v.version,
                         "versionRevision": v.revision}, p.namespace)
        return self._page(items, params, "assets", body)

    def _list_package_version_dependencies(self, params: dict[str, Any], account_id: str,
                                           region: str) -> dict[str, Any]:
        _, _, p, v = self._version(params, account_id, region)
        items = [_with_ns({"package": dep.package, "dependencyType": dep.dependency_type,
                           "versionRequirement": dep.version_requirement}, dep.namespace)
                 for dep in v.dependencies]
        body = _with_ns({"format": p.format, "package": p.name, "version": v.version,
                         "versionRevision": v.revision}, p.namespace)
        return self._page(items, params, "dependencies", body)


def _remember_call(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    context[_CTX_KEY] = (model.name, dict(params))


def _unsigned(**_: Any) -> Any:
    return botocore.UNSIGNED


def _error(request: Any, status: int, code: str, message: str) -> AWSResponse:
    data = json.dumps({"message": message}).encode()
    headers = HeadersDict({"content-type": "application/json", "content-length": str(len(data)),
                           "x-amzn-errortype": code, "x-amzn-requestid": f"fake-{code}"})
    return AWSResponse(request.url, status, headers, _Body(data))


class FakeCodeArtifactClients(Clients):
    """Clients whose codeartifact clients answer from a FakeCodeArtifact (the demo's wiring).

    Every other service goes to boto3 as configured (for the demo: settings.aws.endpoints -> moto).
    """

    def __init__(self, settings: Settings, fake: FakeCodeArtifact):
        super().__init__(settings)
        self.fake = fake

    def client(self, scope: Scope, service: str, region: str | None = None) -> Any:
        c = super().client(scope, service, region)
        if service == "codeartifact":
            self.fake.attach(c, account_id=scope.account_id)
        return c
