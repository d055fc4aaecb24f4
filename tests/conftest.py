"""Shared fixtures: fake AWS credentials, a moto server over HTTP, a scriptable callback
receiver on 127.0.0.1, a HealthOmics fake, and one loader for the sample JSON files."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from omics_edp_cli.local.fake_omics import FakeOmics
from omics_edp_cli.local.receiver import CallbackReceiver

FIXTURES = Path(__file__).parent / "fixtures"
# The sample run status events the package ships (`process --sample`): tests read those, not copies.
SAMPLES = Path(str(resources.files("omics_edp_cli.samples")))
API_TOKEN = "test-token-5f1d0c9e-never-log-me"


def fixture_json(relpath: str) -> Any:
    """Load `tests/fixtures/<relpath>` as JSON."""
    return json.loads((FIXTURES / relpath).read_text())


def sample_path(status: str) -> Path:
    """The shipped sample HealthOmics event of this status (`completed`, `FAILED`, ...)."""
    return SAMPLES / f"run-status-{status.lower()}.json"


def sample_json(status: str) -> Any:
    """A fresh copy of the shipped sample event of this status."""
    return json.loads(sample_path(status).read_text())


@pytest.fixture
def load_fixture() -> Callable[[str], Any]:
    return fixture_json


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region; no profile, config file or endpoint leaks in from outside."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_OMICS", "AUTH_TOKEN", "ENV_SECRETS",
                 "OMICS_EDP_API_TOKEN", "API_SERVER", "DATA_LAKE_BUCKET", "S3_PREFIX",
                 "OMICS_EDP_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def closed_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One moto server over HTTP for the session; tests use unique resource names."""
    from moto.server import ThreadedMotoServer

    from omics_edp_cli.local.sandbox import patch_moto

    patch_moto()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    """The NGS360 receiver with the WES rules: a run it has not seen starts QUEUED."""
    with CallbackReceiver(token=API_TOKEN) as r:
        yield r


# The WES run id of the sample runs' WESRunId tag.
SAMPLE_WES_RUN_ID = "0f6f1c3e-2b6a-4f7e-9d7e-3c1b5a9e8d21"


@pytest.fixture
def running_receiver(receiver: CallbackReceiver) -> CallbackReceiver:
    """The sample run is already RUNNING there: for tests about one event at a time (a run that
    starts QUEUED refuses a lone COMPLETED; tests/test_nothing_lost.py covers that rule)."""
    receiver.states[SAMPLE_WES_RUN_ID] = "RUNNING"
    return receiver


@pytest.fixture
def fake_omics(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOmics]:
    """HealthOmics fake with run 8567247 registered (three tasks); AWS_ENDPOINT_URL_OMICS set."""
    run = fixture_json("omics/get-run-8567247.json")
    tasks = (fixture_json("omics/list-run-tasks-8567247-page1.json")["items"]
             + fixture_json("omics/list-run-tasks-8567247-page2.json")["items"])
    with FakeOmics() as fake:
        fake.add_run(run, tasks)
        monkeypatch.setenv("AWS_ENDPOINT_URL_OMICS", fake.url)
        yield fake
