"""Helpers shared by the EDP tests (tests/test_edp_*.py)."""
