"""Cold package time of a 100-object batch against the local AWS (moto server over HTTP).

"Cold" = a fresh process: quilt3 imported, nothing cached, a new registry. Reported next to a
baseline measured in the same process: copying the same 100 objects with boto3 `copy_object`
(what a push must do at least), so the ratio says what quilt3 adds. No timing is asserted.

Usage: .venv/bin/python bench/bench_packager.py [--objects 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

scratch = tempfile.mkdtemp(prefix="bench-packager-")
os.environ.setdefault("XDG_DATA_HOME", f"{scratch}/data")
os.environ.setdefault("XDG_CACHE_HOME", f"{scratch}/cache")
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1",
                  AWS_DEFAULT_REGION="us-east-1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100)
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    from omics_edp_cli.local.sandbox import patch_moto

    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address[:2]  # type: ignore[union-attr]
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    import boto3

    from omics_edp_cli.aws import ClientFactory
    from omics_edp_cli.packager.config import PackagerSettings

    s3 = boto3.client("s3")
    run = uuid.uuid4().hex[:8]
    source, registry, copies = f"src-{run}", f"reg-{run}", f"copy-{run}"
    for bucket in (source, registry, copies):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"novaseq-01/run-0001/Data/s_{i:04d}.bcl.gz" for i in range(args.objects)]
    for key in keys:
        s3.put_object(Bucket=source, Key=key, Body=os.urandom(4096))
    started = time.perf_counter()
    for key in keys:
        s3.copy_object(Bucket=copies, Key=key, CopySource={"Bucket": source, "Key": key})
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    from omics_edp_cli.packager.packager import Packager  # the quilt3 import is part of a cold start

    event = {"detail-type": "package-objects-ready", "detail": {
        "bucket": source, "prefix": "novaseq-01/run-0001/", "count": len(keys), "batch_id": run}}
    result = Packager(PackagerSettings.checked(registry=registry), ClientFactory()).package(event)
    cold = time.perf_counter() - started
    server.stop()
    assert result.outcome == "created", result
    print(f"objects: {len(keys)}  boto3 copy_object baseline: {baseline:.2f} s  "
          f"cold package (import quilt3 + plan + push): {cold:.2f} s  ratio: {cold / baseline:.1f}x")


if __name__ == "__main__":
    main()
