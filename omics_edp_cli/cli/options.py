"""Options several commands share, declared once (replay, reconcile: the archive and the API)."""

from __future__ import annotations

from typing import Annotated

import typer

ProcessorStackOption = Annotated[
    str | None, typer.Option("--stack", help="Processor stack: reads its DataLakeBucket, BucketPrefix, "
                             "ApiServer and the ApiSecretArn token.")
]
ArchiveBucketOption = Annotated[
    str | None, typer.Option("--bucket", help="Archive bucket (env DATA_LAKE_BUCKET; default: the stack's).")
]
ArchivePrefixOption = Annotated[
    str | None, typer.Option("--prefix", help="Archive key prefix (env S3_PREFIX; default: the stack's, "
                             "else omics-run-events).")
]
ApiServerOption = Annotated[
    str | None, typer.Option("--api-server", help="NGS360 WES API base URL (env API_SERVER; "
                             "default: the stack's).")
]
UntilOption = Annotated[
    str | None, typer.Option("--until", help="End of the window, inclusive (same forms as --since; "
                             "default: when the command started).")
]
RateOption = Annotated[
    float, typer.Option("--rate", help="At most this many events per second over all runs (0: no limit).")
]
