"""Operator workflows: packaging, deploy, replay, simulate, dlq, doctor, demo. Never shipped to Lambda."""
