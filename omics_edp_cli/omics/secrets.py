"""The callback API token: one policy for what a token may be, where it is read from, and
one redaction function that keeps it out of every log, error, report and DLQ attribute.

Standard library only (plus botocore's exceptions): the Lambda and the CLI both use it.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from omics_edp_cli.errors import ConfigError, OperationError

MASK = "***"
MIN_TOKEN_LENGTH = 12
# A valid HTTP header value (RFC 9110 field-value, ASCII only) without `"` and `\`, so the
# token survives JSON and the template's `{"AUTH_TOKEN": "..."}` unchanged. Surrounding
# whitespace is stripped before the check; inner spaces and tabs are allowed.
_TOKEN_CHAR = r"[!#-\[\]-~]"
TOKEN_PATTERN = rf"^{_TOKEN_CHAR}(?:[ \t!#-\[\]-~]*{_TOKEN_CHAR})?$"
_TOKEN_RE = re.compile(TOKEN_PATTERN)


def token_problem(token: str) -> str | None:
    """What is wrong with an (already stripped) token, or None. Never quotes the value."""
    if len(token) < MIN_TOKEN_LENGTH:
        return f"is shorter than {MIN_TOKEN_LENGTH} characters"
    if '"' in token or "\\" in token:
        return 'contains " or \\ (not allowed)'
    if not _TOKEN_RE.fullmatch(token):
        return "is not a valid HTTP header value (control or non-ASCII characters)"
    return None


def check_token(token: str, source: str) -> str:
    """The token with surrounding whitespace stripped, remembered for `redact`; `ConfigError`
    naming `source` (never the value) when `token_problem` finds something."""
    stripped = token.strip()
    problem = token_problem(stripped)
    if problem:
        raise ConfigError(f"{source}: the API token {problem}")
    remember(stripped)
    return stripped


def resolve_token(secretsmanager: Any, env: Mapping[str, str] | None = None) -> str | None:
    """`AUTH_TOKEN` wins; else the `AUTH_TOKEN` key of the JSON secret named by `ENV_SECRETS`."""
    from omics_edp_cli.omics import config  # here: `omics-edp --help` starts without it

    env = os.environ if env is None else env
    if env.get(config.AUTH_TOKEN):
        return check_token(env[config.AUTH_TOKEN], f"environment variable {config.AUTH_TOKEN}")
    secret_id = env.get(config.ENV_SECRETS)
    if not secret_id:
        return None
    return token_from_secret(secretsmanager, secret_id)


def token_from_secret(secretsmanager: Any, secret_id: str) -> str:
    """The checked token of a `{"AUTH_TOKEN": ...}` secret; errors name the secret, never the value."""
    # Imported here: the CLI imports this module for `redact` before any command runs, and
    # `omics-edp --help` loads no botocore (tests/test_cli_startup.py).
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        secret = secretsmanager.get_secret_value(SecretId=secret_id)
    except (BotoCoreError, ClientError) as e:
        raise OperationError(f"reading secret {secret_id} failed: {redact(str(e))}") from None
    try:
        token = json.loads(secret.get("SecretString") or "")["AUTH_TOKEN"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"secret {secret_id!r} is not JSON with an AUTH_TOKEN key"
        ) from None
    if not isinstance(token, str) or not token:
        raise ConfigError(f"secret {secret_id!r} has an empty AUTH_TOKEN")
    return check_token(token, f"secret {secret_id!r}")


def secret_string(token: str) -> str:
    """The secret's JSON as the Lambda reads it back (`token_from_secret`)."""
    return json.dumps({"AUTH_TOKEN": token})


def _hex(value: int, width: int) -> str:
    """A regex for `value` in hex digits of either case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{value:0{width}x}")


def _escaped_pattern(secret: str) -> str:
    """A regex for `secret` in any mix, character by character, of raw text, URL encoding
    (%hh, %25hh twice encoded, + for a space), JSON (\\uXXXX, \\", \\/) and Python repr
    (\\xhh, \\', \\n) escapes, with the backslashes themselves escaped again any number of times."""
    backslashes = r"\\{1,8}"
    parts = []
    for char in secret:
        code = ord(char)
        forms = [re.escape(char)]
        utf8 = char.encode()
        forms.append("".join(rf"%(?:25)?{_hex(b, 2)}" for b in utf8))  # URL-encoded (once or twice)
        forms.append("".join(rf"{backslashes}x{_hex(b, 2)}" for b in utf8))  # repr of bytes
        if code < 0x100:
            forms.append(rf"{backslashes}x{_hex(code, 2)}")
        if code < 0x10000:
            forms.append(rf"{backslashes}u{_hex(code, 4)}")
        if char in "\"'\\/":
            forms.append(backslashes + re.escape(char))
        named = {" ": r"\+", "\t": backslashes + "t", "\n": backslashes + "n", "\r": backslashes + "r"}
        if char in named:
            forms.append(named[char])
        parts.append("(?:" + "|".join(dict.fromkeys(forms)) + ")")
    return "".join(parts)


def _base64_forms(secret: str) -> list[str]:
    """The base64 text of `secret` at each of the three byte alignments inside a longer blob:
    only the characters that depend on the secret alone (standard and URL-safe alphabets)."""
    data = secret.encode()
    forms = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start = 4 if offset else 0  # the first group mixes in bytes before the secret
        end = (offset + len(data)) // 3 * 4  # a last partial group mixes in bytes after it
        core = encoded[start:end]
        if len(core) >= 8:
            forms.append(core)
            forms.append(core.replace("+", "-").replace("/", "_"))
    return forms


class Redactor:
    """Replaces known secret values, escaped or encoded, with `***` in any text."""

    def __init__(self, *secrets: str | None):
        self._patterns: dict[str, re.Pattern[str]] = {}
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        # Very short values would mask ordinary words; the token policy refuses them anyway.
        if not secret or len(secret) < 4 or secret in self._patterns:
            return
        alternatives = [_escaped_pattern(secret), *map(re.escape, _base64_forms(secret))]
        self._patterns[secret] = re.compile("|".join(alternatives))
        # Longest first, so a secret containing another is masked whole.
        self._patterns = dict(sorted(self._patterns.items(), key=lambda kv: -len(kv[0])))

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def __call__(self, text: str) -> str:
        for pattern in self._patterns.values():
            text = pattern.sub(MASK, text)
        return text


# Every secret this process has seen (the token read by the Lambda or the CLI, NoEcho deploy
# parameters): the one place logs, errors, reports and DLQ attributes are masked against.
_known = Redactor()


def remember(secret: str | None) -> None:
    """Add a secret to what `redact` masks, for the rest of this process."""
    _known.add(secret)


def redact(text: str) -> str:
    """`text` with every remembered secret masked in any escaped form. Mask before truncating."""
    return _known(text)


def known_secrets() -> Redactor:
    """The process-wide redactor `remember` adds to and `redact` applies."""
    return _known
