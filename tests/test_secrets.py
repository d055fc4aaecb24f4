"""The one token policy and the one redaction function (tokens and their escaped forms)."""

from __future__ import annotations

import base64
import json
import urllib.parse

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from omics_edp_cli.errors import ConfigError
from omics_edp_cli.local.receiver import CallbackReceiver, Scripted
from omics_edp_cli.omics.config import DeliveryPolicy
from omics_edp_cli.omics.delivery import CallbackClient
from omics_edp_cli.omics.secrets import (
    MASK,
    MIN_TOKEN_LENGTH,
    TOKEN_PATTERN,
    Redactor,
    check_token,
    redact,
    secret_string,
    token_from_secret,
    token_problem,
)
from omics_edp_cli.ops.deploy.parameters import load_template


def _processor_template() -> dict:
    return load_template("processor").document()


TOKEN = "tok-SECRET-9d1e/4b+c=a'z"
FAST = DeliveryPolicy(max_retries=0, timeout=2, backoff_factor=0.0, backoff_jitter=0.0)
# Header-safe tokens: what the policy accepts (visible ASCII but " and \, inner spaces allowed).
VISIBLE = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\']
tokens = st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(VISIBLE),
    st.text(alphabet=[*VISIBLE, " "], min_size=MIN_TOKEN_LENGTH - 2, max_size=60),
    st.sampled_from(VISIBLE),
)


SECRET_SUB = _processor_template()["Resources"]["ApiSecret"]["Properties"]["SecretString"]


@pytest.fixture
def secretsmanager():
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def escaped_forms(token: str) -> dict[str, str]:
    data = token.encode()
    return {
        "raw": token,
        "repr": repr(token),
        "repr-in-repr": repr(repr(token)),
        "repr-bytes": repr(data),
        "json": json.dumps(token),
        "json-ascii": json.dumps(token, ensure_ascii=True),
        "json-in-json": json.dumps(json.dumps({"h": token})),
        "url": urllib.parse.quote(token, safe=""),
        "url-plus": urllib.parse.quote_plus(token),
        "url-lower": urllib.parse.quote(token, safe="").replace("%2F", "%2f"),
        "url-twice": urllib.parse.quote(urllib.parse.quote(token, safe=""), safe=""),
        "json-unicode": "".join(f"\\u{ord(c):04x}" for c in token),
        "base64": base64.b64encode(data).decode(),
        "base64-url": base64.urlsafe_b64encode(data).decode(),
        "base64-in-blob": base64.b64encode(b"x-api-key: " + data + b"\r\n").decode(),
    }


def leaks(text: str, token: str) -> list[str]:
    """The escaped forms of `token` (or their secret-only base64 core) found in `text`."""
    found = [name for name, form in escaped_forms(token).items()
             if form.strip("\"'") in text and not name.startswith("base64")]
    for offset in range(3):  # base64 at every alignment, minus the edge groups
        core = base64.b64encode(b"\0" * offset + token.encode()).decode()[4:-4]
        if len(core) >= 8 and core in text:
            found.append(f"base64@{offset}")
    return found


@pytest.mark.parametrize("form", list(escaped_forms(TOKEN)))
def test_every_escaped_form_is_masked(form: str):
    text = f"before {escaped_forms(TOKEN)[form]} after"
    masked = Redactor(TOKEN)(text)
    assert MASK in masked
    assert leaks(masked, TOKEN) == []
    assert masked.startswith("before ") and masked.endswith(" after")


@settings(max_examples=150, deadline=None)
@given(tokens)
def test_any_accepted_token_is_masked_in_every_form(token: str):
    accepted = token.strip()
    assert token_problem(accepted) is None
    redactor = Redactor(accepted)
    for name, form in escaped_forms(accepted).items():
        assert leaks(redactor(f"<{form}>"), accepted) == [], name


def test_ordinary_text_is_left_alone():
    assert Redactor(TOKEN)("HTTP 401 tok SECRET invalid key") == "HTTP 401 tok SECRET invalid key"


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("short-tok", f"shorter than {MIN_TOKEN_LENGTH} characters"),
        ('tok-with-"quote"-0000', 'contains " or \\'),
        ("tok-with-\\backslash-0000", 'contains " or \\'),
        ("tok-with-newline\ninside-0000", "not a valid HTTP header value"),
        ("tok-with-nul\x00inside-0000", "not a valid HTTP header value"),
        ("tok-with-é-non-ascii-0000", "not a valid HTTP header value"),
    ],
)
def test_the_policy_refuses_with_one_line_that_never_holds_the_value(token: str, problem: str):
    with pytest.raises(ConfigError) as raised:
        check_token(token, "environment variable OMICS_EDP_API_TOKEN")
    message = str(raised.value)
    assert message.startswith("environment variable OMICS_EDP_API_TOKEN: the API token")
    assert problem in message
    assert "\n" not in message and token.strip() not in message


def test_surrounding_whitespace_is_stripped():
    assert check_token(f"  {TOKEN}\n", "x") == TOKEN


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_the_template_pattern_accepts_exactly_what_the_policy_accepts(value: str):
    import re
    accepted = token_problem(value) is None
    assert accepted == bool(re.fullmatch(TOKEN_PATTERN, value) and len(value) >= MIN_TOKEN_LENGTH)


@settings(max_examples=100, deadline=None)
@given(tokens)
def test_whatever_the_policy_accepts_the_lambda_reads_back_unchanged(token: str):
    """Through the template's own substitution (`!Sub '{"AUTH_TOKEN": "${ApiServerAuthToken}"}'`)
    and through `secret_string`: both parse, both give the token back unchanged."""
    accepted = token.strip()
    assert token_problem(accepted) is None
    for text in (SECRET_SUB.replace("${ApiServerAuthToken}", accepted), secret_string(accepted)):
        assert json.loads(text)["AUTH_TOKEN"] == accepted


def test_the_secret_reader_reads_a_deployed_secret_back(secretsmanager):
    for token in (TOKEN, "a b'c!#$%&()*+,-./:;<=>?@[]^_`{|}~", "x" * 200):
        arn = secretsmanager.create_secret(
            Name=f"t{len(token)}", SecretString=SECRET_SUB.replace("${ApiServerAuthToken}", token))["ARN"]
        assert token_from_secret(secretsmanager, arn) == token


def test_a_secret_whose_token_cannot_be_sent_is_a_config_error_naming_the_secret():
    bad = "tok-from-secret-0000\r\nX-Injected: 1"
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="wes/key", SecretString=json.dumps({"AUTH_TOKEN": bad}))
        with pytest.raises(ConfigError) as raised:
            token_from_secret(client, "wes/key")
    assert "secret 'wes/key'" in str(raised.value)
    assert "tok-from-secret" not in str(raised.value)


def test_an_unsendable_token_is_refused_before_anything_is_sent(receiver: CallbackReceiver):
    with pytest.raises(ConfigError) as raised:
        CallbackClient(receiver.url, TOKEN + "\nX-Injected: 1", FAST)
    assert "not a valid HTTP header value" in str(raised.value)
    assert "tok-SECRET" not in str(raised.value)
    assert receiver.requests == []


def test_stripped_token_is_what_is_sent():
    """The client strips; the receiver compares exactly, as the WES service does (since issue 11
    a refused key raises, so the receiver must hold this token)."""
    payload = {"event_id": "e", "omics_run_id": "1234567", "status": "RUNNING",
               "event_time": "2026-01-23T00:00:00Z", "wes_run_id": "0f6f1c3e-2b6a-4f7e-9d7e-3c1b5a9e8d21"}
    with CallbackReceiver(token=TOKEN) as receiver:
        result = CallbackClient(receiver.url, f" {TOKEN}\n", FAST).deliver(payload)
    assert receiver.requests[0].headers["x-internal-api-key"] == TOKEN
    assert (result.outcome, result.http_status) == ("delivered", 200)


@pytest.mark.parametrize("cut", range(-len(TOKEN), 1, 5))
def test_a_token_echoed_across_the_truncation_point_never_shows_in_part(cut: int):
    """The body is masked first, then cut at 2,000 characters: no `…tok-SECRET` tail."""
    with CallbackReceiver(token=None) as r:
        echo = "x" * (2000 + cut) + TOKEN + "y" * 50
        r.script(Scripted(422, body={"detail": echo}))
        result = CallbackClient(r.url, TOKEN, FAST).deliver({"event_id": "e"})
    assert result.outcome == "rejected"
    for size in range(6, len(TOKEN) + 1):
        for start in range(len(TOKEN) - size + 1):
            part = TOKEN[start:start + size]
            assert part not in result.body, part


def test_remembered_tokens_are_masked_by_the_one_function():
    check_token("tok-remembered-31f7c2", "x")
    assert redact("x tok-remembered-31f7c2 y") == f"x {MASK} y"
    assert redact(urllib.parse.quote("tok-remembered-31f7c2/", safe="")) == f"{MASK}%2F"
