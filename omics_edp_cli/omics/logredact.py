"""The logging filter that masks every remembered secret (`secrets.redact`) in log records.

Its own module so that `logging` is imported only where logs are configured (the Lambda
handler, `omics-edp -v`), not by everything that redacts (`omics-edp --help` starts faster).
"""

from __future__ import annotations

import logging

from omics_edp_cli.omics.secrets import Redactor, known_secrets


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the final message and traceback of every record."""

    def __init__(self, redactor: Redactor | None = None):
        super().__init__()
        self.redactor = redactor or known_secrets()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = self.redactor(logging.Formatter().formatException(record.exc_info))
            # The traceback is kept, masked, as text: the exception object itself may hold the value.
            record.exc_info = None
            record.exc_text = text
        return True
