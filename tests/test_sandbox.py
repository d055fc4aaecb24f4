"""The local AWS runs in a child process: it answers, stops with the sandbox, and says why it failed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from omics_edp_cli.errors import OperationError
from omics_edp_cli.local.sandbox import LocalAws, LocalSandbox


def test_the_local_aws_answers_from_its_own_process_and_ends_with_the_sandbox():
    seen: list[int] = []

    def while_starting(box: LocalSandbox) -> None:
        seen.append(box._moto._process.pid)  # type: ignore[union-attr]

    with LocalSandbox("demo-00000000", while_starting=while_starting) as box:
        s3 = box.clients.client("s3")
        s3.create_bucket(Bucket="sandbox-answers")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["sandbox-answers"]
        [pid] = seen
        assert pid != os.getpid()
        os.kill(pid, 0)  # running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_child_ignores_ctrl_c_and_leaves_when_its_parent_does():
    """Ctrl-C in a terminal reaches the whole group: the parent decides; a killed parent ends it too."""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys\n"
        "from omics_edp_cli.local.sandbox import LocalAws, _free_port\n"
        "aws = LocalAws(_free_port()).start()\n"
        "aws.wait_ready()\n"
        "print(aws._process.pid, flush=True)\n"
        "sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())  # type: ignore[union-attr]
    os.kill(child, signal.SIGINT)
    os.kill(child, 0)  # still running
    parent.kill()
    parent.wait()
    # The child exits on its stdin's end; it is not ours to wait for: watch for it (bounded).
    for _ in range(3000):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if _is_zombie(child):
            break
        time.sleep(0.01)
    else:
        raise AssertionError(f"the local AWS process {child} outlived its parent")


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_a_local_aws_that_cannot_start_says_why():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        aws = LocalAws(port).start()
        with pytest.raises(OperationError, match=rf"did not start on 127.0.0.1:{port}: .*in use"):
            aws.wait_ready()
