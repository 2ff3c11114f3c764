"""Secrets for sending: the SMTP login and the alert webhook URL, from the environment or AWS Secrets Manager.

Reads: the environment (CAA_SMTP_USER / CAA_SMTP_PASSWORD, the variable named by
settings.alerts.webhook_url_env) and, when those are unset, Secrets Manager (settings.email.smtp_secret_arn,
settings.alerts.webhook_secret_arn; IAM action secretsmanager:GetSecretValue). Writes nothing.

Secrets are never part of the configuration file, never logged and never put in an exception message:
values travel as pydantic SecretStr (its repr and str are asterisks) and are only unwrapped at the
moment they are handed to smtplib or urllib. Errors name the variable or the secret ARN, never a value.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from core.aws import Scope
from core.errors import ConfigError
from core.settings import Settings

SMTP_USER_ENV = "CAA_SMTP_USER"
SMTP_PASSWORD_ENV = "CAA_SMTP_PASSWORD"


@dataclass(frozen=True)
class SmtpLogin:
    username: str
    password: SecretStr

    def __repr__(self) -> str:  # the user name is not secret, but keep the object quiet in tracebacks
        return f"SmtpLogin(username={self.username!r}, password=SecretStr('**********'))"


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None


@contextmanager
def quiet_wire_logs() -> Iterator[None]:
    """botocore logs response bodies at DEBUG, which for GetSecretValue is the secret: keep the AWS and
    HTTP loggers at INFO or above for the duration of the call, whatever the root level is."""
    loggers = [logging.getLogger(n) for n in ("botocore", "boto3", "urllib3", "s3transfer")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


def read_secret(settings: Settings, arn: str, clients: Any = None) -> str:
    """The SecretString of `arn` (a Secrets Manager ARN or name)."""
    from core.aws import Clients, aws_errors

    clients = clients or Clients(settings)
    scope = Scope(region=_region_of(arn))
    sm = clients.client(scope, "secretsmanager")
    with quiet_wire_logs(), aws_errors(scope, "secretsmanager", what=f"secret {arn}"):
        value = sm.get_secret_value(SecretId=arn)
    text = value.get("SecretString")
    if text is None:
        raise ConfigError(f"secret {arn} has no SecretString", where="Secrets Manager",
                          fix="store the value as a string secret (not binary)")
    return text


def smtp_login(settings: Settings, clients: Any = None) -> SmtpLogin | None:
    """The SMTP login: CAA_SMTP_USER and CAA_SMTP_PASSWORD, else the JSON secret
    {"username": ..., "password": ...} at settings.email.smtp_secret_arn, else None (no AUTH)."""
    user, password = os.environ.get(SMTP_USER_ENV), os.environ.get(SMTP_PASSWORD_ENV)
    if user and password:
        return SmtpLogin(user, SecretStr(password))
    if user or password:
        missing = SMTP_PASSWORD_ENV if user else SMTP_USER_ENV
        raise ConfigError(f"{missing} is not set", where="environment",
                          fix=f"set both {SMTP_USER_ENV} and {SMTP_PASSWORD_ENV}, or neither")
    arn = settings.email.smtp_secret_arn
    if not arn:
        return None
    text = read_secret(settings, arn, clients)
    try:
        data = json.loads(text)
        return SmtpLogin(str(data["username"]), SecretStr(str(data["password"])))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"secret {arn} is not JSON with the keys username and password",
                          where="email.smtp_secret_arn",
                          fix='store {"username": "...", "password": "..."} in the secret') from None


def webhook_url(settings: Settings, clients: Any = None) -> SecretStr | None:
    """The alert webhook URL: the environment variable named by settings.alerts.webhook_url_env, else the
    secret at settings.alerts.webhook_secret_arn (the URL itself, or JSON {"url": ...}), else None."""
    env = settings.alerts.webhook_url_env
    if value := os.environ.get(env):
        return SecretStr(_checked_url(value, where=env))
    arn = settings.alerts.webhook_secret_arn
    if not arn:
        return None
    text = read_secret(settings, arn, clients).strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text)["url"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"secret {arn} is JSON without a url key", where="alerts.webhook_secret_arn",
                              fix='store the URL itself, or {"url": "https://..."}') from None
    return SecretStr(_checked_url(text, where=arn))


def _checked_url(value: str, where: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ConfigError("the webhook URL does not start with https:// or http://", where=where,
                          fix="set it to the full incoming-webhook URL")
    return value
