"""The EDP batcher: S3 object events → batches per prefix → package-objects-ready events.

Lambda-side code: imports only the standard library, boto3 and requests.
"""
