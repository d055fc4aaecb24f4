"""The Omics run event processor: HealthOmics run status events → payload → S3 archive → callback.

Lambda-side code: imports only the standard library, boto3 and requests.
"""
