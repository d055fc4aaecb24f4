"""AWS Lambda entry point of the Omics run event processor.

Clients and settings are built lazily at module scope and reused across warm invocations.
"""

from __future__ import annotations

import logging
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import OperationError
from omics_edp_cli.omics.archive import ArchiveStore, Encryption
from omics_edp_cli.omics.config import ProcessorSettings
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.processor import Processor
from omics_edp_cli.omics.secrets import RedactingFilter, redact, resolve_token

log = logging.getLogger(__name__)
_processor: Processor | None = None


def configure_logging(verbose: bool) -> None:
    """INFO (DEBUG when verbose) for this package; botocore stays quiet; secrets masked."""
    root = logging.getLogger()
    if not root.handlers:  # outside Lambda (Lambda installs its own handler)
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("omics_edp_cli").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())  # every secret `resolve_token` read


def build_processor(settings: ProcessorSettings, clients: ClientFactory | None = None) -> Processor:
    clients = clients or ClientFactory()
    configure_logging(settings.verbose)
    token = resolve_token(clients.client("secretsmanager"))
    archive = ArchiveStore(
        clients.client("s3"), settings.bucket, settings.prefix, Encryption(settings.kms_key_id)
    )
    callback = CallbackClient(settings.api_server, token, settings.delivery)
    return Processor(archive, clients.client("omics"), callback)


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    global _processor
    if _processor is None:
        _processor = build_processor(ProcessorSettings.from_env())
    log.debug("received event: %s", event)
    try:
        result = _processor.process(event)
    except OperationError as e:
        # A transient delivery failure or an archive failure fails the invocation: Lambda
        # retries the event and finally sends it to the dead-letter queue.
        log.error("invocation failed, Lambda will retry: %s", e)
        raise
    except Exception as e:
        # Lambda puts str(e) in the log and the DLQ's ErrorMessage attribute: never unmasked.
        if redact(str(e)) != str(e):
            raise OperationError(redact(str(e))) from None
        raise
    return {"statusCode": 200 if result.ok else 400, **result.as_dict()}


def reset() -> None:
    """Forget the warm-start processor (tests change the environment between invocations)."""
    global _processor
    _processor = None
