"""`deploy` and `package`: parameters, reproducible zips, change sets."""
