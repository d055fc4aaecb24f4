"""`python -m omics_edp_cli` is the same as `omics-edp`."""

from omics_edp_cli.cli.app import main

main()
