"""The one client factory: region precedence and the one-line hint when none is configured."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from omics_edp_cli.aws import (
    UNUSED_S3_ENDPOINT_PARAMS,
    ClientFactory,
    parse_timestamp,
    referenced_endpoint_params,
)
from omics_edp_cli.errors import ConfigError


def test_aws_region_alone_is_enough(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert ClientFactory().client("s3").meta.region_name == "eu-west-1"


def test_flag_beats_aws_region_which_beats_aws_default_region(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert ClientFactory().region_name == "eu-west-1"
    assert ClientFactory(region="ap-south-1").region_name == "ap-south-1"


def test_no_region_anywhere_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(ConfigError, match="No AWS region configured: pass --region or set AWS_REGION"):
        ClientFactory().client("sqs")


# --- CPU per S3 call (bench/bench_replay.py --s3-latency) -------------------------------------

HTTP_DATES = ["Wed, 02 Dec 2026 01:51:13 GMT", "Thu, 29 Feb 2024 23:59:59 GMT",
              "Mon, 01 Jan 1970 00:00:00 GMT"]


@pytest.mark.parametrize("value", [*HTTP_DATES, "2026-12-02T01:51:13.000Z", "1700000000", 1700000000])
def test_timestamps_parse_to_what_botocore_gives(value):
    from botocore.utils import parse_timestamp as botocore_parse

    ours, theirs = parse_timestamp(value), botocore_parse(value)
    assert (ours, repr(ours)) == (theirs, repr(theirs))


def test_an_impossible_http_date_fails_as_botocore_fails():
    with pytest.raises(ValueError, match="day is out of range for month"):
        parse_timestamp("Wed, 31 Feb 2026 01:51:13 GMT")


def test_the_clients_parse_http_dates_with_the_fast_parser():
    factory = ClientFactory(region="us-east-1")
    parser = factory.session()._session.get_component("response_parser_factory").create_parser("rest-xml")
    assert parser._timestamp_parser is parse_timestamp


def test_s3_rules_read_none_of_the_parameters_left_out():
    """If a botocore release makes a rule read `Key`, the parameters stay (and this says so)."""
    client = ClientFactory(region="us-east-1").client("s3")
    model = client.meta.service_model
    loader = ClientFactory(region="us-east-1").session()._session.get_component("data_loader")
    rules = loader.load_service_model("s3", "endpoint-rule-set-1", model.api_version)
    read = referenced_endpoint_params(rules)
    assert "Bucket" in read and "Region" in read
    assert not read & set(UNUSED_S3_ENDPOINT_PARAMS)


def test_s3_endpoints_are_resolved_once_per_bucket_not_once_per_key():
    with mock_aws():
        # Written through another client: each client caches its own endpoints.
        writer = boto3.client("s3", region_name="us-east-1")
        writer.create_bucket(Bucket="endpoint-cache")
        for i in range(3):
            writer.put_object(Bucket="endpoint-cache", Key=f"k/{i}.json", Body=b"{}")
        s3 = ClientFactory(region="us-east-1").client("s3")
        provider = s3._ruleset_resolver._provider
        # The cached resolver: botocore since its own fix for this (boto/botocore#3528) drops the
        # unused parameters in `resolve_endpoint` and caches `_resolve_endpoint`; before, the
        # cache sat on `resolve_endpoint` itself.
        resolve = getattr(provider, "_resolve_endpoint", provider.resolve_endpoint)
        before = resolve.cache_info()
        bodies = [s3.get_object(Bucket="endpoint-cache", Key=f"k/{i}.json")["Body"].read() for i in range(3)]
        after = resolve.cache_info()
    assert bodies == [b"{}"] * 3
    assert after.misses - before.misses <= 1
    assert after.hits - before.hits >= 2
