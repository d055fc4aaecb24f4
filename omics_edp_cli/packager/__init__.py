"""The packaging consumer: a `package-objects-ready` event becomes a Quilt data package.

Lambda-side code: standard library, boto3 and quilt3 only (quilt3 is imported by `push.py`
alone, so planning and `--dry-run` work without it).
"""
