"""The callback API token (from `AUTH_TOKEN` or a Secrets Manager secret) and keeping it out of logs."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.omics import config

MASK = "***"


def resolve_token(secretsmanager: Any, env: Mapping[str, str] | None = None) -> str | None:
    """`AUTH_TOKEN` wins; else the `AUTH_TOKEN` key of the JSON secret named by `ENV_SECRETS`."""
    env = os.environ if env is None else env
    if env.get(config.AUTH_TOKEN):
        return env[config.AUTH_TOKEN]
    secret_id = env.get(config.ENV_SECRETS)
    if not secret_id:
        return None
    return token_from_secret(secretsmanager, secret_id)


def token_from_secret(secretsmanager: Any, secret_id: str) -> str:
    try:
        secret = secretsmanager.get_secret_value(SecretId=secret_id)
    except (BotoCoreError, ClientError) as e:
        # The exception text names the secret, never its value.
        raise OperationError(f"reading secret {secret_id!r} failed: {e}") from None
    try:
        token = json.loads(secret.get("SecretString") or "")["AUTH_TOKEN"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"secret {secret_id!r} is not JSON with an AUTH_TOKEN key"
        ) from None
    if not isinstance(token, str) or not token:
        raise ConfigError(f"secret {secret_id!r} has an empty AUTH_TOKEN")
    return token


class Redactor:
    """Replaces known secret values with `***` in any text."""

    def __init__(self, *secrets: str | None):
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the final message of every record."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = self.redactor(str(record.exc_info[1]))
            if text != str(record.exc_info[1]):
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{record.msg} ({text})"
        return True
