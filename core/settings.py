"""The one typed Settings object of caa.

Precedence: explicit overrides (CLI flags such as --db) > CAA_* environment variables > caa.toml >
defaults. The file is ./caa.toml, or the path in CAA_CONFIG. Nested keys use `__` in the environment
(CAA_PRICES__STORAGE_USD_PER_GB_MONTH=0.06). Settings never hold credentials: boto3's default chain
(profiles, SSO, environment, instance roles) provides them, and SMTP secrets are read from the
environment only when an e-mail is sent.

Reads: caa.toml, CAA_* environment variables. Writes nothing.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from core.errors import ConfigError, first_line

DEFAULT_DB = Path("data/caa.duckdb")
ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
CRON_RE = re.compile(r"^\S+(\s+\S+){4}$")

# Fix text per setting; the key is the first element of the pydantic error location.
FIXES = {
    "accounts": "each [[accounts]] needs id = a 12-digit account id, regions = [\"us-east-1\", ...], "
    "and optionally role_arn = \"arn:aws:iam::<id>:role/<name>\"",
    "cloudtrail": "see [cloudtrail] in caa.toml.example",
    "cloudtrail.sources": "sources are s3://bucket/prefix URIs or local directories holding AWSLogs/...",
    "cloudtrail.batch_files": "batch_files is the most trail files per commit, a whole number from 1 to 5000 "
    "(default 5000)",
    "cloudtrail.s3_concurrency": "s3_concurrency is the number of parallel S3 downloads, 1 to 64 (default 12)",
    "prices": "prices are non-negative numbers, e.g. storage_usd_per_gb_month = 0.05",
    "cur": "see [cur] in caa.toml.example: sources are s3://bucket/prefix URIs or local folders of a CUR 2.0 export",
    "schedules": "schedules are 5-field cron expressions, e.g. \"0 * * * *\"",
    "email": "see the e-mail section of the README",
    "db": "set db to a file path such as data/caa.duckdb",
    "cleanup": "see [cleanup] in caa.toml.example",
    "costs": "shared_asset_split is one of equal, first_publisher, download_share",
    "spikes": "see [spikes] in caa.toml.example",
    "alerts": "see [alerts] in caa.toml.example",
}


class Section(BaseModel):
    """A settings section: an unknown key is an error (a typo must not fall back to a default silently),
    and a number must be finite (an `inf` price is refused)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Account(Section):
    """An AWS account to collect from; role_arn is assumed when given."""

    id: str
    role_arn: str | None = None
    regions: list[str] = Field(default_factory=lambda: ["us-east-1"], min_length=1)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        v = str(v)
        if not ACCOUNT_RE.match(v):
            raise ValueError("an account id is exactly 12 digits")
        return v

    @field_validator("role_arn")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        if v is not None and not ROLE_RE.match(v):
            raise ValueError("role_arn must look like arn:aws:iam::123456789012:role/caa-collect")
        return v

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: list[str]) -> list[str]:
        bad = [r for r in v if not REGION_RE.match(r)]
        if bad:
            raise ValueError(f"not an AWS region: {', '.join(bad)}")
        return v


class CloudTrail(Section):
    """Where trail files are read from. With no sources, LookupEvents is the (slow) fallback."""

    sources: list[str] = Field(default_factory=list)
    # how far back a first run reads (no watermark, no --since); it names older files and the command for them
    backfill_days: int = Field(default=35, ge=1, le=3650,
                               validation_alias=AliasChoices("backfill_days", "lookback_days"))  # (its old name)
    s3_concurrency: int = Field(default=12, ge=1, le=64)
    # files per commit, at most: a commit also ends at collectors/cloudtrail.py BATCH_BYTES of trail files
    batch_files: int = Field(default=5000, ge=1, le=5000)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        return check_sources(v)


def check_sources(v: list[str]) -> list[str]:
    """s3://bucket/prefix URIs (a valid bucket name) or local paths."""
    for s in v:
        if s.startswith("s3://") and not re.match(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$", s):
            raise ValueError(f"not an S3 URI: {s!r} (expected s3://bucket/prefix)")
    return v


class Cur(Section):
    """Where the AWS Data Exports CUR 2.0 export (Parquet) is: s3://bucket/prefix or a local folder."""

    sources: list[str] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v: list[str]) -> list[str]:
        return check_sources(v)


class RegionPrice(Section):
    storage_usd_per_gb_month: float | None = Field(default=None, ge=0)
    request_usd_per_10k: float | None = Field(default=None, ge=0)


class Prices(Section):
    """The price table (AWS Price List, service AWSCodeArtifact). Data, not code."""

    storage_usd_per_gb_month: float = Field(default=0.05, ge=0)
    request_usd_per_10k: float = Field(default=0.05, ge=0)
    free_requests_per_month: int = Field(default=100_000, ge=0)
    free_storage_gb_month: float = Field(default=0.0, ge=0)
    # data transfer out, billed at AWS's standard rates (the model of analytics/transfer.py)
    transfer_internet_usd_per_gb: float = Field(default=0.09, ge=0)
    transfer_inter_region_usd_per_gb: float = Field(default=0.02, ge=0)
    free_transfer_out_gb_month: float = Field(default=100.0, ge=0)  # internet, per account; shared by its services
    regions: dict[str, RegionPrice] = Field(default_factory=dict)

    @field_validator("regions")
    @classmethod
    def _region_keys(cls, v: dict[str, RegionPrice]) -> dict[str, RegionPrice]:
        bad = [r for r in v if not REGION_RE.match(r)]
        if bad:
            raise ValueError(f"not an AWS region: {', '.join(bad)}")
        return v

    def for_region(self, region: str) -> tuple[float, float]:
        """(storage $/GB-month, $ per 10k requests) in a region."""
        o = self.regions.get(region, RegionPrice())
        storage = o.storage_usd_per_gb_month
        requests = o.request_usd_per_10k
        return (
            self.storage_usd_per_gb_month if storage is None else storage,
            self.request_usd_per_10k if requests is None else requests,
        )


class Cleanup(Section):
    """The default cleanup policy (every field can be overridden on the command line)."""

    unused_days: int = Field(default=180, ge=0)  # no download for this many days
    keep_latest: int = Field(default=3, ge=0)  # never select the newest K versions of a package
    keep_latest_per_major: int = Field(default=1, ge=0)  # ... nor the newest K of each major line
    min_age_days: int = Field(default=90, ge=0)  # never select a version younger than this
    protect: list[str] = Field(default_factory=list)  # globs over "format/namespace/package"
    pins: list[str] = Field(default_factory=list)  # "package@version" or "namespace/package@version"
    statuses: list[str] = Field(default_factory=lambda: ["Published", "Unlisted", "Archived"])
    backtest_days: int = Field(default=90, ge=1)


class Costs(Section):
    """How storage shared between repositories is attributed (it is billed once per domain)."""

    shared_asset_split: Literal["equal", "first_publisher", "download_share"] = "equal"
    # the cost-allocation tag of the bill (CUR 2.0 resource_tags) that names a repository's team; [teams]
    # globs win over it, and it wins over the repository's own "team" tag from the inventory
    bill_team_tag: str | None = "team"


class Spikes(Section):
    min_daily_downloads: int = Field(default=20, ge=0)  # quiet packages never alert
    score_threshold: float = Field(default=6.0, gt=0)
    baseline_weeks: int = Field(default=4, ge=1, le=26)
    # A spike that only the volume signal sees (downloads or requests in few sessions) needs this much excess:
    # below it, one CI job fetching what it needs; a runaway loop makes thousands.
    min_volume_excess: int = Field(default=100, ge=1)
    min_excess_requests: int = Field(default=1_000, ge=1)  # a principal's request-volume spike (a runaway loop)


class Schedules(Section):
    """Cron expressions (UTC) for `caa schedule`."""

    cloudtrail: str = "*/30 * * * *"
    inventory: str = "15 2 * * *"
    cloudwatch: str = "0 * * * *"
    costs: str = "30 6 * * *"
    cur: str = "40 6 * * *"  # AWS re-delivers the open period's export up to a few times a day
    email: str = "0 8 * * 1"
    alerts: str = "*/15 * * * *"
    analytics: str = "45 * * * *"  # refresh the cached analytics (reports under data/reports)

    @field_validator("*")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not CRON_RE.match(v.strip()):
            raise ValueError(f"{v!r} is not a 5-field cron expression")
        return v.strip()


class Email(Section):
    """Cost e-mails. SMTP user and password come from CAA_SMTP_USER / CAA_SMTP_PASSWORD at send time."""

    transport: Literal["smtp", "ses"] = "smtp"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    from_addr: str = "caa@localhost"
    to: list[str] = Field(default_factory=list)
    dashboard_url: str = "http://127.0.0.1:8501"
    owners: dict[str, list[str]] = Field(default_factory=dict)  # owner address -> repository name globs
    smtp_secret_arn: str | None = None  # Secrets Manager secret {"username", "password"}, instead of env


class Alerts(Section):
    """Spike and auth-failure alerts. The webhook URL is a secret: it comes from the environment variable
    named here (or Secrets Manager), never from this file."""

    email: bool = False  # send alerts to email.to
    sns_topic_arn: str | None = None
    webhook_url_env: str = "CAA_WEBHOOK_URL"
    webhook_secret_arn: str | None = None
    since_days: int = Field(default=7, ge=1)  # only spikes that ended within this many days alert


class Aws(Section):
    """How caa talks to AWS. endpoints maps a service name to a URL (for a local moto server)."""

    endpoints: dict[str, str] = Field(default_factory=dict)
    retry_mode: Literal["standard", "adaptive"] = "adaptive"
    max_attempts: int = Field(default=10, ge=1, le=30)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CAA_", env_nested_delimiter="__", extra="forbid", validate_default=True, allow_inf_nan=False
    )

    db: Path = DEFAULT_DB
    accounts: list[Account] = Field(default_factory=list)
    cloudtrail: CloudTrail = Field(default_factory=CloudTrail)
    cur: Cur = Field(default_factory=Cur)
    prices: Prices = Field(default_factory=Prices)
    schedules: Schedules = Field(default_factory=Schedules)
    email: Email = Field(default_factory=Email)
    aws: Aws = Field(default_factory=Aws)
    teams: dict[str, list[str]] = Field(default_factory=dict)  # team -> repository name globs
    cleanup: Cleanup = Field(default_factory=Cleanup)
    costs: Costs = Field(default_factory=Costs)
    spikes: Spikes = Field(default_factory=Spikes)
    alerts: Alerts = Field(default_factory=Alerts)

    _toml_data: dict[str, Any] | None = None  # caa.toml as load_settings read it

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_data is not None:  # what pydantic-settings' TOML source does with the file it reads
            sources.append(InitSettingsSource(settings_cls, init_kwargs=cls._toml_data))
        return tuple(sources)


def config_path() -> Path:
    return Path(os.environ.get("CAA_CONFIG", "caa.toml"))


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read caa.toml (if present) and CAA_* variables; raise ConfigError with one line on a bad value."""
    path = path or config_path()
    overrides = {k: v for k, v in overrides.items() if v is not None}
    toml_file: Path | None = None
    toml_data: dict[str, Any] | None = None
    if path.exists():
        try:  # utf-8-sig: Windows editors start a UTF-8 file with a byte-order mark, which TOML's parser refuses
            toml_data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
        except OSError as e:  # a folder, no permission
            raise ConfigError(f"cannot read the config file {path} ({e.strerror or first_line(e)})",
                              where="CAA_CONFIG" if "CAA_CONFIG" in os.environ else None,
                              fix="point CAA_CONFIG at a caa.toml file you can read, or unset it") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path} is not UTF-8 text (byte {e.start} is 0x{e.object[e.start]:02x})",
                              fix="save the file as UTF-8") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path} is not valid TOML: {e}", fix="correct the syntax at that line") from None
        toml_file = path
    elif "CAA_CONFIG" in os.environ:
        raise ConfigError(f"config file {path} does not exist", where="CAA_CONFIG",
                          fix="point CAA_CONFIG at an existing caa.toml or unset it")
    Settings._toml_data = toml_data
    try:
        return Settings(**overrides)
    except SettingsError as e:  # a CAA_* variable whose value is not the JSON its setting needs
        field = re.search(r'field "?(\w+)"?', str(e))
        name = f"CAA_{field.group(1).upper()}" if field else "a CAA_* variable"
        raise ConfigError(f"{name} is not valid JSON for its setting", where=name,
                          fix=f"{FIXES.get(field.group(1), 'see the README') if field else 'see the README'}; "
                              "write it as JSON, e.g. CAA_ACCOUNTS='[{\"id\": \"123456789012\"}]'") from None
    except ValidationError as e:
        what, where, fix = _describe(e.errors(), toml_file)
        raise ConfigError(what, where=where, fix=fix) from None
    finally:
        Settings._toml_data = None


def _describe(errors: list[dict], toml_file: Path | None) -> tuple[str, ...]:
    """Every bad setting in one line: what, where (the file or the CAA_* variable), and the fix."""
    parts, wheres, fixes = [], [], []
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"])
        top = str(err["loc"][0]) if err["loc"] else ""
        env_name = "CAA_" + "__".join(str(p) for p in err["loc"][:2]).upper()
        if err["type"] == "extra_forbidden" and (secret := _secret(err["loc"])):
            parts.append(f"{loc} is a secret, never read from the config file")
            fix = secret
        elif err["type"] == "extra_forbidden":
            near = _nearest(err["loc"])
            parts.append(f"unknown setting {loc}" + (f" (did you mean {near}?)" if near else ""))
            fix = "correct or remove the unknown key(s)"
        else:
            parts.append(f"setting {loc} is invalid: {err['msg'].removeprefix('Value error, ')}")
            key = ".".join(str(p) for p in err["loc"][:2])
            fix = FIXES.get(key) or FIXES.get(top, "correct or remove that setting")
        unknown = err["type"] == "extra_forbidden"
        wheres.append(str(toml_file) if toml_file and unknown else f"{toml_file} or {env_name}" if toml_file else env_name)
        if fix not in fixes:
            fixes.append(fix)
    where = wheres[0] if len(set(wheres)) == 1 else (str(toml_file) if toml_file else "CAA_* variables")
    return "; ".join(parts), where, "; ".join(fixes)


# Keys people write for a secret, per section (lowercase), and where caa takes that secret from instead: a
# difflib match would offer email.smtp_port for smtp_password, or alerts.webhook_url_env for webhook_url.
SECRET_KEYS = {
    "email": ({"password", "smtp_password", "pass", "user", "username", "smtp_user", "smtp_username", "login"},
              "remove it and set CAA_SMTP_USER and CAA_SMTP_PASSWORD where caa runs, or email.smtp_secret_arn "
              "(a Secrets Manager secret)"),
    "alerts": ({"webhook_url", "webhook", "url", "slack_webhook", "teams_webhook"},
               "remove it and put the URL in the environment variable alerts.webhook_url_env names "
               "(CAA_WEBHOOK_URL by default), or alerts.webhook_secret_arn"),
    "aws": ({"access_key", "access_key_id", "aws_access_key_id", "secret_key", "secret_access_key",
             "aws_secret_access_key", "session_token", "aws_session_token"},
            "remove it: caa takes AWS credentials from the environment, a profile (AWS_PROFILE) or the instance or "
            "task role (README: a real AWS account)"),
}
# Other names people write for a key, per section: {section: {written: key}} (difflib finds neither).
ALIASES = {"email": {"sender": "from_addr", "from": "from_addr", "from_address": "from_addr",
                     "recipients": "to", "to_addrs": "to", "host": "smtp_host", "port": "smtp_port",
                     "tls": "starttls", "use_tls": "starttls"}}


def _secret(loc: tuple) -> str | None:
    """The fix for an unknown key at `loc` that names a secret caa never reads from its file, else None."""
    key = str(loc[-1]).lower()
    if key in SECRET_KEYS["aws"][0]:  # at the top, in [aws] or in an [[accounts]] entry
        return SECRET_KEYS["aws"][1]
    keys, fix = SECRET_KEYS.get(str(loc[0]).lower(), (set(), None)) if len(loc) == 2 else (set(), None)
    return fix if key in keys else None


def _nearest(loc: tuple) -> str | None:
    """The valid key closest to the unknown one at `loc` (a known other name for it, else a difflib match), as a
    dotted name."""
    import difflib
    import typing

    alias = ALIASES.get(str(loc[0]).lower(), {}).get(str(loc[-1]).lower()) if len(loc) == 2 else None
    if alias:
        return f"{loc[0]}.{alias}"

    model: Any = Settings
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            model = field.annotation if field else None
        elif typing.get_origin(model) in (list, dict):  # `part` is an index or a key
            model = typing.get_args(model)[-1]
        else:
            return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    match = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return ".".join([*map(str, loc[:-1]), match[0]]) if match else None
