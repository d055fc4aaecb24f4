"""Helpers for the replay and dlq tests (archive payloads, DLQ message shapes)."""
