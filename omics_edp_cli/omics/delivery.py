"""Callback delivery to the NGS360 WES API, with bounded retries.

Retries use urllib3's `Retry` mounted through a requests `HTTPAdapter` (backoff with
jitter, `Retry-After`, POST allowed). It is wrapped thinly for two things it lacks: a cap
on `Retry-After` (a receiver asking for an hour would outlive the Lambda) and the attempt
count the replay report needs (read from the retry history).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from omics_edp_cli.errors import ApiKeyRefused, ConfigError, DeliveryError
from omics_edp_cli.omics.config import CALLBACK_PATH, DeliveryPolicy
from omics_edp_cli.omics.secrets import check_token, redact

log = logging.getLogger(__name__)

# Every 5xx is the server's trouble, not the payload's: retried like 408 and 429.
TRANSIENT_STATUSES = frozenset({408, 429, *range(500, 600)})
AUTH_HEADER = "X-Internal-API-Key"
# 401/403: the key is wrong or was rotated. Failing is right (the event waits in the DLQ until
# the key is fixed), retrying the same key right away is not.
AUTH_STATUSES = frozenset({401, 403})
# Fields the archive record carries for operators and `reconcile`, never sent to the receiver.
ARCHIVE_ONLY_FIELDS = frozenset({"enrichment_gaps"})
_BODY_LIMIT = 2000

Outcome = Literal["delivered", "already_processed", "rejected"]
# Told after each failed attempt that will be tried again: (attempt that failed, why).
OnRetry = Callable[[int, str], None]


class CappedRetry(Retry):
    """`Retry` with a ceiling on `Retry-After`, and backoff cap and jitter on any urllib3.

    `backoff_max` and `backoff_jitter` only exist from urllib3 2.0, and the test extra's
    checkov pins urllib3 1.26 (as do some Lambda runtimes), so both are kept here and the
    backoff is computed here rather than passed to the base class.
    """

    def __init__(
        self,
        *args: Any,
        retry_after_cap: float = 10.0,
        backoff_max: float = 120.0,
        backoff_jitter: float = 0.0,
        on_retry: OnRetry | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.retry_after_cap = retry_after_cap
        self.backoff_max = backoff_max
        self.backoff_jitter = backoff_jitter
        self.on_retry = on_retry

    def new(self, **kw: Any) -> CappedRetry:
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        kw.setdefault("backoff_max", self.backoff_max)
        kw.setdefault("backoff_jitter", self.backoff_jitter)
        kw.setdefault("on_retry", self.on_retry)
        return super().new(**kw)  # type: ignore[return-value]

    def increment(self, method: Any = None, url: Any = None, response: Any = None, error: Any = None,
                  _pool: Any = None, _stacktrace: Any = None) -> CappedRetry:
        """Count a failed attempt (raises when the budget is spent), then say it is tried again."""
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        reason = f"HTTP {response.status}" if response is not None else _error_reason(error)
        log.info("callback attempt %d failed (%s); trying again", len(new.history), reason)
        if self.on_retry is not None:
            self.on_retry(len(new.history), reason)
        return new  # type: ignore[return-value]

    def get_backoff_time(self) -> float:
        # Consecutive errors since the last redirect, as urllib3 counts them.
        errors = 0
        for entry in reversed(self.history):
            if entry.redirect_location is not None:
                break
            errors += 1
        if errors <= 1:
            return 0.0
        value = self.backoff_factor * (2 ** (errors - 1))
        if self.backoff_jitter:
            value += random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, value)))

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.retry_after_cap)


@dataclass(frozen=True)
class DeliveryResult:
    """A final answer from the receiver: 2xx, or a permanent 4xx that retrying cannot fix."""

    outcome: Outcome
    http_status: int
    attempts: int
    body: str

    @property
    def ok(self) -> bool:
        return self.outcome != "rejected"


def make_session(policy: DeliveryPolicy, on_retry: OnRetry | None = None) -> requests.Session:
    retry = CappedRetry(
        total=policy.max_retries,
        connect=policy.max_retries,
        read=policy.max_retries,
        status=policy.max_retries,
        other=0,
        allowed_methods=None,  # POST too: the receiver de-duplicates on event_id
        status_forcelist=TRANSIENT_STATUSES,
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max,
        backoff_jitter=policy.backoff_jitter,
        respect_retry_after_header=True,
        raise_on_status=False,
        retry_after_cap=policy.retry_after_cap,
        on_retry=on_retry,
    )
    session = requests.Session()
    # requests reads proxies, the CA bundle and ~/.netrc from the environment again on every
    # request (a scan of os.environ and two file checks: a third of a callback's CPU).
    # `CallbackClient` reads them once per URL (`environment_settings`) and passes them in.
    session.trust_env = False
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=32)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def environment_settings(url: str) -> dict[str, Any]:
    """What a requests session that trusts the environment would use for `url`: proxies
    (`HTTPS_PROXY`, `NO_PROXY`, ...), `verify` (`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`), and the
    credentials of a `~/.netrc` entry for its host."""
    merged = requests.Session().merge_environment_settings(url, {}, None, None, None)
    return {"proxies": merged["proxies"], "verify": merged["verify"], "cert": merged["cert"],
            "auth": requests.utils.get_netrc_auth(url)}


class CallbackClient:
    """POSTs payloads to `{api_server}/internal/callbacks/omics-state-change`."""

    def __init__(
        self,
        api_server: str,
        token: str | None,
        policy: DeliveryPolicy | None = None,
        session: requests.Session | None = None,
        on_retry: OnRetry | None = None,
    ):
        self.url = api_server.rstrip("/") + CALLBACK_PATH
        self.policy = policy or DeliveryPolicy()
        # Checked here too (not only where it was read): an unsendable token is a configuration
        # error, never a "transient" failure retried until the budget runs out.
        self._token = check_token(token, "the callback API token") if token else None
        self.session = session or make_session(self.policy, on_retry)
        # Per URL, when the session does not read the environment itself (see make_session).
        self._environment: dict[str, dict[str, Any]] = {}

    def deliver(self, payload: dict[str, Any], url: str | None = None) -> DeliveryResult:
        """Deliver once (with retries) to `url` (default: the API server's callback).

        Raises `DeliveryError` when transient failures persist and `ApiKeyRefused` on 401/403.
        """
        url = url or self.url
        payload = {k: v for k, v in payload.items() if k not in ARCHIVE_ONLY_FIELDS}
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers[AUTH_HEADER] = self._token
        timeout = (min(3.05, self.policy.timeout), self.policy.timeout)
        environment = self._environment.get(url)
        if environment is None:
            environment = {} if self.session.trust_env else environment_settings(url)
            self._environment[url] = environment
        try:
            response = self.session.post(
                url, data=json.dumps(payload), headers=headers, timeout=timeout, **environment
            )
        except requests.exceptions.InvalidHeader:
            # Its message quotes the header value: never shown, and nothing was sent.
            raise ConfigError(f"the callback API token is not a valid {AUTH_HEADER} header value; "
                              "nothing was sent") from None
        except requests.RequestException as e:
            attempts = self.policy.max_retries + 1
            raise DeliveryError(
                f"callback to {url} failed after {attempts} attempts: "
                f"{_short_error(e)}",
                attempts=attempts,
            ) from None
        attempts = _attempts(response)
        # Masked before it is cut, so a token echoed across the cut cannot show in part.
        body = redact(response.text)[:_BODY_LIMIT]
        status = response.status_code
        if status in TRANSIENT_STATUSES:
            raise DeliveryError(
                f"callback to {url} still failing after {attempts} attempts: "
                f"HTTP {status} {body[:200]}",
                attempts=attempts,
                http_status=status,
            )
        if status in AUTH_STATUSES:
            log.error("callback refused the API key: HTTP %s %s", status, body[:200])
            raise ApiKeyRefused(
                f"the receiver refused the API key (HTTP {status} from {url})",
                attempts=attempts, http_status=status,
            )
        if 200 <= status < 300:
            outcome: Outcome = "already_processed" if _already_processed(response) else "delivered"
            log.info("callback %s: HTTP %s after %d attempt(s)", outcome, status, attempts)
            return DeliveryResult(outcome, status, attempts, body)
        log.error("callback rejected: HTTP %s %s", status, body)
        return DeliveryResult("rejected", status, attempts, body)


def _attempts(response: requests.Response) -> int:
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", ()) or ()
    return len(history) + 1


def _already_processed(response: requests.Response) -> bool:
    try:
        return bool(response.json().get("already_processed"))
    except (ValueError, AttributeError):
        return False


def _error_reason(error: Any) -> str:
    """`[Errno 111] Connection refused`, not urllib3's `<HTTPConnection object at 0x…>: Failed …`."""
    text = str(getattr(error, "reason", None) or error or "no answer")
    return text.splitlines()[-1].rsplit(": ", 1)[-1][:200] if text else "no answer"


def _short_error(exc: requests.RequestException) -> str:
    """The last line of a connection error, not urllib3's whole pool repr."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return redact(str(reason or exc)).splitlines()[-1][:300]
