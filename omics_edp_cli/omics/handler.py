"""AWS Lambda entry point of the Omics run event processor.

Clients and settings are built lazily at module scope and reused across warm invocations.
"""

from __future__ import annotations

import logging
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ApiKeyRefused, OperationError
from omics_edp_cli.omics.archive import ArchiveStore, Encryption
from omics_edp_cli.omics.config import ProcessorSettings
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.logredact import RedactingFilter
from omics_edp_cli.omics.metrics import MetricsLogger
from omics_edp_cli.omics.processor import Processor
from omics_edp_cli.omics.secrets import redact, resolve_token

log = logging.getLogger(__name__)
_processor: Processor | None = None
_metrics: MetricsLogger | None = None


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
    return Processor(archive, clients.client("omics"), callback,
                     allowed_origins=settings.callback_origins())


def warm(clients: ClientFactory | None = None) -> Processor:
    """Build the processor and metrics once per container (tests pass prepared clients)."""
    global _processor, _metrics
    if _processor is None:
        settings = ProcessorSettings.from_env()
        _processor = build_processor(settings, clients)
        _metrics = MetricsLogger(settings.stack_name)
    return _processor


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    processor = warm()
    metrics = _metrics or MetricsLogger("")
    log.debug("received event: %s", event)
    try:
        result = processor.process(event)
    except ApiKeyRefused as e:
        metrics.outcome("failed", reason="api_key_refused")
        log.error("%s: fix the stack's API key (omics-edp deploy), then omics-edp dlq redrive; "
                  "the event fails and waits in the dead-letter queue", e)
        raise
    except OperationError as e:
        # A transient enrichment, delivery or archive failure fails the invocation: Lambda
        # retries the event and finally sends it to the dead-letter queue.
        metrics.outcome("failed", reason=type(e).__name__)
        log.error("invocation failed, Lambda will retry: %s", e)
        raise
    except Exception as e:
        # Lambda puts str(e) in the log and the DLQ's ErrorMessage attribute: never unmasked.
        metrics.outcome("failed", reason=type(e).__name__)
        if redact(str(e)) != str(e):
            raise OperationError(redact(str(e))) from None
        raise
    metrics.outcome(result.outcome)
    return {"statusCode": 200 if result.ok else 400, **result.as_dict()}


def reset() -> None:
    """Forget the warm-start processor (tests change the environment between invocations)."""
    global _processor, _metrics
    _processor = None
    _metrics = None
