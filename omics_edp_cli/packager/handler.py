"""AWS Lambda entry point of the packager (rule on the EDP bus for `package-objects-ready`).

quilt3 keeps its config and cache under the user's data directory, read-only in Lambda except
`/tmp`: the template points XDG_DATA_HOME and XDG_CACHE_HOME there, and this module does the
same when they are missing, before quilt3 is first imported.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import OperationError
from omics_edp_cli.packager.config import PackagerSettings
from omics_edp_cli.packager.packager import Packager

log = logging.getLogger(__name__)
_packager: Packager | None = None
LAMBDA_SCRATCH = "/tmp/quilt"


def _lambda_dirs() -> None:
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        os.environ.setdefault("XDG_DATA_HOME", f"{LAMBDA_SCRATCH}/data")
        os.environ.setdefault("XDG_CACHE_HOME", f"{LAMBDA_SCRATCH}/cache")


def configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:  # outside Lambda (Lambda installs its own handler)
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("omics_edp_cli").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "quilt3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_packager(settings: PackagerSettings, clients: ClientFactory | None = None) -> Packager:
    configure_logging(settings.verbose)
    return Packager(settings, clients or ClientFactory())


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    global _packager
    _lambda_dirs()
    if _packager is None:
        _packager = build_packager(PackagerSettings.from_env())
    log.debug("received event: %s", event)
    try:
        result = _packager.package(event)
    except OperationError as e:
        # Throttling, network, a registry it cannot write to: Lambda retries the event, then it
        # goes to the dead-letter queue (`omics-edp dlq list --stack …`).
        log.error("invocation failed, Lambda will retry: %s", e)
        raise
    return {"statusCode": 200 if result.ok else 400, **result.as_dict()}


def reset() -> None:
    """Forget the warm-start packager (tests change the environment between invocations)."""
    global _packager
    _packager = None
