"""omics-edp: the NGS360 Omics run event processor, the EDP S3 batcher, and the tool that runs them."""

__version__ = "0.1.0"
