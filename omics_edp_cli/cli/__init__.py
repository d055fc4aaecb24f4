"""The `omics-edp` command line: Typer commands that parse options, call ops/ and render with Rich."""
