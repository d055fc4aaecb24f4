"""`replay`: re-send archived payloads, each WES run in order (plan → execute)."""
