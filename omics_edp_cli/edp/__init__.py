"""The EDP batcher: S3 object events → batches per prefix → package-objects-ready events.

Lambda-side code: imports only the standard library, boto3 and requests.

`config` (thresholds, environment names) · `s3events` (every S3 event shape → ObjectEvent) ·
`engine` (the pure batching rules) · `store` + `memory_store` / `sqlite_store` /
`dynamodb_store` (batch state behind one interface) · `emit` (the package-objects-ready event,
PutEvents) · `batcher` (engine over a store, exactly-once emission) · `handlers` (the ingest
and flush Lambdas).
"""
