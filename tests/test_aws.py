"""The one client factory: region precedence and the one-line hint when none is configured."""

from __future__ import annotations

import pytest

from omics_edp_cli.aws import ClientFactory
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
