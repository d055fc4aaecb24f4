"""`omics-edp replay` throughput against a naive loop, and list calls for a one-hour window.

Puts N archived payloads (default 5,000: 1,000 runs of five events) in S3 on a moto server over
HTTP, starts a local callback receiver on 127.0.0.1, then times in this one process:
  * naive:  list the whole archive, then for each key GET the object and POST it, one by one
            (boto3 + `requests.post`, the loop one would write without this tool);
  * replay: `omics-edp replay` with its defaults (8 runs at a time, no rate limit), through
            the same ops functions the command calls.
It prints events per second for both and the ratio (target >= 5x). The moto server and the
receiver run as separate processes, so their CPU does not share this process's GIL with the
code being measured. Then it fills an in-process moto S3 with 100,000 archive keys (written
straight into moto's backend: putting them over HTTP would take minutes) and counts the
ListObjectsV2 calls `replay` makes for a one-hour window.

`--latency MS` makes the receiver take that long per callback, like the real API writing to
its database (default 0: a local receiver that answers at once).

`--s3-latency MS` is where AWS's latency is: every S3 call of `replay` waits that long first (a
botocore `before-send` hook on its client, in this bench only), as a GET to real S3 waits 10 to 30 ms
on the network. Then the naive loop is left out (one GET and one POST at a time would take
minutes) and the baseline is the receiver's own ceiling: the same payloads POSTed by
`--concurrency` threads with nothing else to do. Target: replay at least 0.8x that ceiling.
It prints the CPU each process spent per replayed event (replay, the local S3, the receiver).
`--s3 lite` serves S3 from `S3Lite` (in-memory, keep-alive) instead of moto's server, which
spends 4-5 ms of this machine's CPU per GetObject that real S3 spends on AWS's machines.
`--profile FILE` writes a yappi profile of the replay (CPU clock, every thread) to FILE.

Usage: .venv/bin/python bench/bench_replay.py [--events 5000] [--latency 0] [--big 100000]
       .venv/bin/python bench/bench_replay.py --s3-latency 20 --latency 20 [--concurrency 8] [--s3 lite]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

T = TypeVar("T")

STATUSES = ("PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED")
PREFIX = "omics-run-events"
TOKEN = "bench-token-0123456789"  # check_token wants 12 characters or more
T0 = datetime(2026, 11, 23, 1, 0, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A minimal callback receiver: 200 `{"success": true}` after `latency` seconds; counts posts."""

    def __init__(self, latency: float, port: int = 0):
        self.count = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
            # the client's delayed ACK stall every answer on a kept-alive connection by ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if latency:
                    time.sleep(latency)
                with receiver._lock:
                    receiver.count += 1
                data = b'{"success": true, "already_processed": false}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class S3Lite:
    """The few S3 calls replay makes, served from memory: PUT bucket/object, ListObjectsV2 (path
    style, `prefix`, `start-after`, `max-keys`, continuation), GetObject; no signature check.

    The stand-in for S3 in `--s3 lite`: moto's server spends 4 to 5 ms of this machine's CPU on
    every GetObject (under one GIL: it serves at most ~230 a second), which real S3 spends on its
    own machines. Keep-alive, as real S3 keeps its connections open.
    """

    NS = "http://s3.amazonaws.com/doc/2006-03-01/"

    def __init__(self, port: int = 0):
        self.buckets: dict[str, dict[str, tuple[bytes, str, str]]] = {}  # body, date, ETag
        lite = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _split(self) -> tuple[str, str, dict[str, str]]:
                path, _, query = self.path.partition("?")
                bucket, _, key = path.lstrip("/").partition("/")
                params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
                return unquote(bucket), unquote(key), params

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {"Content-Type": "application/xml"}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                bucket, key, _ = self._split()
                if not key:
                    lite.buckets.setdefault(bucket, {})
                    return self._answer(200, b"")
                etag = f'"{hashlib.md5(body).hexdigest()}"'
                lite.buckets[bucket][key] = (body, formatdate(usegmt=True), etag)
                self._answer(200, b"", {"ETag": etag})

            def do_GET(self) -> None:
                bucket, key, params = self._split()
                objects = lite.buckets.get(bucket)
                if objects is None:
                    return self._answer(404, b"<Error><Code>NoSuchBucket</Code></Error>")
                if key:
                    found = objects.get(key)
                    if found is None:
                        return self._answer(404, b"<Error><Code>NoSuchKey</Code></Error>")
                    return self._answer(200, found[0], {
                        "Content-Type": "application/json", "Last-Modified": found[1], "ETag": found[2]})
                self._answer(200, lite.list_v2(bucket, params))

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def list_v2(self, bucket: str, params: dict[str, str]) -> bytes:
        prefix, limit = params.get("prefix", ""), int(params.get("max-keys") or 1000)
        after = params.get("continuation-token") or params.get("start-after", "")
        keys = sorted(k for k in self.buckets[bucket] if k.startswith(prefix) and k > after)
        page, truncated = keys[:limit], len(keys) > limit
        parts = [f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{self.NS}">',
                 f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>",
                 f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"]
        for key in page:
            body = self.buckets[bucket][key][0]
            parts.append(f"<Contents><Key>{escape(key)}</Key><LastModified>2026-11-23T01:00:00.000Z"
                         f"</LastModified><Size>{len(body)}</Size><StorageClass>STANDARD</StorageClass>"
                         "</Contents>")
        if truncated:
            parts.append(f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>")
        parts.append("</ListBucketResult>")
        return "".join(parts).encode()


def serve_s3(port: int) -> None:
    S3Lite(port)
    threading.Event().wait()


def fill_archive(s3: Any, bucket: str, events: int) -> None:
    from omics_edp_cli.omics.archive import archive_key

    def put(i: int) -> None:
        run, step = divmod(i, len(STATUSES))
        at = T0 + timedelta(seconds=run * 2 + step * 30)
        payload = {
            "omics_run_id": str(1000000 + run), "status": STATUSES[step],
            "event_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "event_id": str(uuid.uuid4()),
            "wes_run_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"run-{run}")),
        }
        s3.put_object(Bucket=bucket, Key=archive_key(PREFIX, at, payload["event_id"]),
                      Body=json.dumps(payload).encode(), ServerSideEncryption="AES256")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(events)))


def naive(s3: Any, bucket: str, url: str) -> int:
    """What one writes without the tool: list everything, then GET and POST one by one."""
    import requests

    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", ())]
    for key in keys:
        payload = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        response = requests.post(url + "/internal/callbacks/omics-state-change", json=payload,
                                 headers={"X-Internal-API-Key": TOKEN}, timeout=10)
        response.raise_for_status()
    return len(keys)


def post_ceiling(s3: Any, bucket: str, url: str, concurrency: int) -> tuple[int, float, float]:
    """(events, seconds, CPU seconds of this process): every archived payload POSTed by
    `concurrency` threads, nothing else.

    The payloads are read first (not timed): this is the most the receiver takes at that
    concurrency, the bound replay's delivery cannot pass.
    """
    import requests

    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", ())]
    with ThreadPoolExecutor(max_workers=16) as pool:
        payloads = list(pool.map(lambda k: s3.get_object(Bucket=bucket, Key=k)["Body"].read(), keys))
    local = threading.local()

    def post(body: bytes) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.post(url + "/internal/callbacks/omics-state-change", data=body, timeout=10,
                                headers={"X-Internal-API-Key": TOKEN, "Content-Type": "application/json"})
        response.raise_for_status()

    cpu, t = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(post, payloads))
    return len(payloads), time.perf_counter() - t, time.process_time() - cpu


class PhaseTimes:
    """Replay's progress protocol, keeping when each phase began (listing, replaying)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def phase(self, name: str, total: int | None) -> None:
        self.started[name] = time.perf_counter()

    def advance(self, count: int = 1) -> None:
        pass


def with_tool(bucket: str, url: str, concurrency: int = 8, s3_latency: float = 0.0,
              profile: str | None = None, progress: PhaseTimes | None = None) -> tuple[int, int]:
    from omics_edp_cli.aws import ClientFactory
    from omics_edp_cli.ops.replay.execute import replay
    from omics_edp_cli.ops.replay.plan import ReplayOptions, plan_replay

    options = ReplayOptions(since="2026-11-23T00:00Z", until="2026-11-24T00:00Z", bucket=bucket,
                            api_server=url, concurrency=concurrency)
    clients = ClientFactory()
    if s3_latency:
        # The network between this machine and S3: every request waits before it is sent.
        clients.client("s3").meta.events.register(
            "before-send.s3.*", lambda **_: time.sleep(s3_latency))
    plan = plan_replay(options, clients, env={"OMICS_EDP_API_TOKEN": TOKEN})
    if profile:
        result = profiled(profile, lambda: replay(plan, clients, progress))
    else:
        result = replay(plan, clients, progress)
    assert result.ok, result.summary()
    return result.summary()["delivered"], result.selection.list_calls


def profiled(path: str, call: Callable[[], T]) -> T:
    """`call()` under yappi's CPU clock, every thread; the top functions go to `path`."""
    import yappi  # type: ignore[import-not-found,import-untyped,unused-ignore]

    yappi.set_clock_type("cpu")
    yappi.start()
    try:
        return call()
    finally:
        yappi.stop()
        with open(path, "w") as out:
            stats = yappi.get_func_stats()
            stats.sort("tsub")
            stats.print_all(out=out, columns={0: ("name", 90), 1: ("ncall", 9), 2: ("tsub", 8),
                                              3: ("ttot", 8), 4: ("tavg", 8)})
            print("\n--- by total ---", file=out)
            stats.sort("ttot")
            stats.print_all(out=out, columns={0: ("name", 90), 1: ("ncall", 9), 2: ("tsub", 8),
                                              3: ("ttot", 8), 4: ("tavg", 8)})
        yappi.clear_stats()


def list_calls_for_one_hour(keys: int) -> tuple[int, int, int]:
    """(keys in the window, list calls `replay` made for it, list calls a full listing needs)."""
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from omics_edp_cli.aws import ClientFactory
    from omics_edp_cli.ops.replay.execute import select_events
    from omics_edp_cli.ops.replay.plan import ReplayOptions, plan_replay

    endpoint = os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            clients = ClientFactory()
            s3 = clients.client("s3")
            bucket = "bench-big-archive"
            s3.create_bucket(Bucket=bucket)
            backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            start = datetime(2026, 11, 1, tzinfo=UTC)
            spacing = 14 * 86400 / keys  # two weeks of history
            for i in range(keys):
                at = start + timedelta(seconds=i * spacing)
                key = f"{PREFIX}/event_{at:%Y%m%d_%H%M%S}_{uuid.uuid4()}.json"
                backend.put_object(bucket, key, b"{}")
            calls: list[int] = []
            s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append(1))
            plan = plan_replay(ReplayOptions(since="2026-11-08T00:00Z", until="2026-11-08T00:59:59Z",
                                             bucket=bucket, dry_run=True), clients)
            selection = select_events(plan, s3)
            return selection.listed, len(calls), math.ceil(keys / 1000)
    finally:
        if endpoint:
            os.environ["AWS_ENDPOINT_URL"] = endpoint


def cpu_seconds(pid: int) -> float:
    """User + system CPU of another process so far (Linux /proc; 0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on port {port} after {timeout:g} s")


def serve_receiver(port: int, latency_ms: float) -> None:
    receiver = Receiver(latency_ms / 1000, port)
    print(receiver.url, flush=True)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="archived payloads to replay")
    parser.add_argument("--latency", type=float, default=0.0, help="receiver ms per callback")
    parser.add_argument("--big", type=int, default=100_000, help="keys in the list-call archive")
    parser.add_argument("--s3-latency", type=float, default=0.0,
                        help="ms added to every S3 call of replay (compares with the POST ceiling)")
    parser.add_argument("--concurrency", type=int, default=8, help="replay --concurrency")
    parser.add_argument("--profile", metavar="FILE",
                        help="with --s3-latency: profile replay (yappi, CPU clock, all threads) into FILE")
    parser.add_argument("--s3", choices=("moto", "lite"), default="moto",
                        help="the local S3: moto's server, or a minimal in-memory one (S3Lite)")
    parser.add_argument("--serve-s3", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        return serve_receiver(args.serve_receiver, args.latency)
    if args.serve_s3:
        return serve_s3(args.serve_s3)

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    import boto3

    moto_port, receiver_port = free_port(), free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    s3_command = (["-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)] if args.s3 == "moto"
                  else [__file__, "--serve-s3", str(moto_port)])
    moto = subprocess.Popen([sys.executable, *s3_command], **quiet)  # type: ignore[call-overload]
    receiver = subprocess.Popen([sys.executable, __file__, "--serve-receiver", str(receiver_port),
                                 "--latency", str(args.latency)], **quiet)  # type: ignore[call-overload]
    try:
        wait_for_port(moto_port, moto)
        wait_for_port(receiver_port, receiver)
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{moto_port}"
        url = f"http://127.0.0.1:{receiver_port}"
        s3 = boto3.client("s3")
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        t = time.perf_counter()
        fill_archive(s3, bucket, args.events)
        print(f"archive: {args.events} payloads in s3://{bucket}/{PREFIX}/ on {args.s3} "
              f"({time.perf_counter() - t:.1f} s to write); receiver latency {args.latency:g} ms; "
              f"{os.cpu_count()} CPUs", file=sys.stderr)

        if args.s3_latency:
            posted, ceiling_s, ceiling_cpu = post_ceiling(s3, bucket, url, args.concurrency)
            phases = PhaseTimes()
            others = {"moto server" if args.s3 == "moto" else "S3Lite": moto.pid, "receiver": receiver.pid}
            before = {name: cpu_seconds(pid) for name, pid in others.items()}
            cpu, t = time.process_time(), time.perf_counter()
            delivered, calls = with_tool(bucket, url, args.concurrency, args.s3_latency / 1000,
                                         args.profile, phases)
            tool_s, tool_cpu = time.perf_counter() - t, time.process_time() - cpu
            spent = {name: cpu_seconds(pid) - before[name] for name, pid in others.items()}
            assert delivered == posted == args.events, (delivered, posted)
            ceiling_rate, tool_rate = posted / ceiling_s, delivered / tool_s
            listing = phases.started.get("replaying", t) - t
            # CPU of this process only: the receiver and the moto server are other processes.
            print(f"POST ceiling, {args.concurrency} threads, {args.latency:g} ms receiver: "
                  f"{posted} events in {ceiling_s:6.2f} s = {ceiling_rate:7.1f} events/s "
                  f"({1000 * ceiling_cpu / posted:.2f} ms CPU per POST)")
            print(f"replay --concurrency {args.concurrency}, {args.s3_latency:g} ms per S3 call: "
                  f"{delivered} events in {tool_s:6.2f} s = {tool_rate:7.1f} events/s ({calls} list calls "
                  f"in the first {listing:.2f} s)")
            print("CPU per replayed event: " + ", ".join(
                [f"replay process {1000 * tool_cpu / delivered:.2f} ms"]
                + [f"{name} {1000 * spent[name] / delivered:.2f} ms" for name in others]))
            print(f"ratio replay/ceiling: {tool_rate / ceiling_rate:.2f} (target >= 0.8)")
            return
        t = time.perf_counter()
        sent = naive(s3, bucket, url)
        naive_s = time.perf_counter() - t
        t = time.perf_counter()
        delivered, calls = with_tool(bucket, url, args.concurrency)
        tool_s = time.perf_counter() - t
        assert sent == delivered == args.events, (sent, delivered)
        naive_rate, tool_rate = sent / naive_s, delivered / tool_s
        print(f"naive loop : {sent} events in {naive_s:6.2f} s = {naive_rate:7.1f} events/s")
        print(f"replay     : {delivered} events in {tool_s:6.2f} s = {tool_rate:7.1f} events/s "
              f"({calls} list calls)")
        print(f"ratio      : {tool_rate / naive_rate:.1f}x (target >= 5x)")
    finally:
        for process in (moto, receiver):
            process.terminate()
            process.wait(timeout=10)
    if args.big:
        in_window, window_calls, full_calls = list_calls_for_one_hour(args.big)
        print(f"list calls : {window_calls} for a one-hour window ({in_window} keys) of a "
              f"{args.big:,}-key archive; a full listing needs {full_calls}")


if __name__ == "__main__":
    main()
