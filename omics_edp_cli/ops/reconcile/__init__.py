"""`omics-edp reconcile`: HealthOmics against the archive, and the fix."""
