"""The CloudFormation templates, shipped inside the package as `omics_edp_cli.cloudformation`."""
