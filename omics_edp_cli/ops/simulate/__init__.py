"""`simulate-batch`: the EDP engine offline (thresholds and sources → execute)."""
