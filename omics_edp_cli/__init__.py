"""omics-edp: the NGS360 Omics run event processor, the EDP S3 batcher, and the tool that runs them."""

import logging

__version__ = "0.1.0"

# A library's log lines go where the application sends them: the Lambda runtime's handler, or the
# CLI's with --verbose. Without one, Python's last-resort handler would print every warning raw
# on stderr, beside the CLI's own line for the same thing.
logging.getLogger(__name__).addHandler(logging.NullHandler())
