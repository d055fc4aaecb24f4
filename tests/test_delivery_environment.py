"""`CallbackClient` reads what requests takes from the environment (proxies, CA bundle, netrc)
once per URL instead of on every request, and still honours it."""

from __future__ import annotations

import pytest

from omics_edp_cli.local.receiver import CallbackReceiver
from omics_edp_cli.omics.config import CALLBACK_PATH, DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient, environment_settings, make_session

TOKEN = "tok-environment-0123456789"
FAST = DeliveryPolicy(max_retries=0, timeout=2, backoff_factor=0.0, backoff_jitter=0.0)
PAYLOAD = {"event_id": "e-1", "omics_run_id": "1234567", "status": "RUNNING",
           "event_time": "2026-01-23T00:00:00Z", "wes_run_id": "0f6f1c3e-2b6a-4f7e-9d7e-3c1b5a9e8d21"}


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.mark.usefixtures("no_proxy_settings")
def test_a_proxy_set_in_the_environment_carries_the_callback(monkeypatch: pytest.MonkeyPatch):
    """The receiver stands in for the proxy: it is sent the callback's absolute URL."""
    with CallbackReceiver(token=TOKEN) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = CallbackClient("http://wes.example.invalid", TOKEN, FAST).deliver(PAYLOAD)
    assert (result.outcome, result.http_status) == ("delivered", 200)
    assert [r.path for r in proxy.requests] == [f"http://wes.example.invalid{CALLBACK_PATH}"]


@pytest.mark.usefixtures("no_proxy_settings")
def test_no_proxy_in_the_environment_sends_direct(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with CallbackReceiver(token=TOKEN) as receiver:
        result = CallbackClient(receiver.url, TOKEN, FAST).deliver(PAYLOAD)
    assert result.outcome == "delivered"
    assert [r.path for r in receiver.requests] == [CALLBACK_PATH]


@pytest.mark.usefixtures("no_proxy_settings")
def test_the_settings_are_those_a_session_trusting_the_environment_would_use(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.invalid:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/bundle.pem")
    settings = environment_settings("https://wes.example.invalid/x")
    assert settings["proxies"]["https"] == "http://proxy.example.invalid:3128"
    assert settings["verify"] == "/etc/ssl/certs/bundle.pem"
    assert make_session(FAST).trust_env is False
