"""`dlq`: read, group, redrive and purge dead-letter queues."""
