"""This project's exceptions. Standard library only: the Lambda code raises them too.

The CLI maps them to exit codes in one place (`cli/errors.py`):
`ConfigError` → 2 (bad usage or configuration), `OperationError` → 1 (the operation ran and failed).
"""

from __future__ import annotations


class OmicsEdpError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(OmicsEdpError):
    """Bad input or configuration, detected before anything was changed."""


class OperationError(OmicsEdpError):
    """The operation ran and failed (AWS refused, the receiver is down, ...)."""


class ArchiveError(OperationError):
    """Writing or reading the S3 archive failed."""


class DeliveryError(OperationError):
    """The callback could not be delivered within the retry budget (a transient failure).

    `attempts` and `http_status` (the last answer, None for connection errors) feed the replay report.
    """

    def __init__(self, message: str, *, attempts: int | None = None, http_status: int | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.http_status = http_status


class ApiKeyRefused(DeliveryError):
    """The receiver answered 401/403: the API key is wrong or was rotated. The fix is
    configuration; retrying the same key cannot help, but the event must not be lost."""


class EnrichmentError(OperationError):
    """Reading the run from HealthOmics failed for a reason that may pass (throttling, 5xx,
    timeout): the invocation fails so that Lambda retries it."""
