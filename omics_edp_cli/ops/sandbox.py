"""A local stand-in for AWS and the NGS360 API: moto, a HealthOmics fake and a callback receiver.

Everything listens on 127.0.0.1 and lives in this process. `clients` reaches all of it
without touching the process environment.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.ops.fake_omics import FakeOmics
from omics_edp_cli.ops.receiver import CallbackReceiver

REGION = "us-east-1"
LOCAL_CREDENTIALS = ("omics-edp-local", "omics-edp-local")


def patch_moto_change_set_outputs() -> None:
    """Make moto compute a stack's Outputs when a change set is executed, as AWS does.

    moto 5.2 applies a change set's resources but never rebuilds the output map, so a stack
    created through a change set (the way `deploy` works) has no Outputs. Idempotent.
    """
    from moto.cloudformation import models

    change_set = models.ChangeSet
    if getattr(change_set.apply, "_omics_edp_fixed", False):
        return
    original = change_set.apply

    def apply(self: Any) -> None:
        original(self)
        stack = self.stack
        stack.output_map = type(stack.output_map)(stack.resource_map, self.template_dict, stack.stack_id)

    apply._omics_edp_fixed = True  # type: ignore[attr-defined]
    change_set.apply = apply  # type: ignore[method-assign]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalSandbox:
    """Start with `with LocalSandbox(token) as box:`; `box.clients` talks to it."""

    token: str
    port: int = 0
    omics: FakeOmics = field(init=False)
    receiver: CallbackReceiver = field(init=False)
    aws_url: str = field(init=False, default="")
    clients: ClientFactory = field(init=False)

    def __enter__(self) -> LocalSandbox:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as e:  # the `local` extra is not installed
            from omics_edp_cli.errors import ConfigError

            raise ConfigError(
                "the local sandbox needs moto: pip install 'omics-edp-cli[local]'"
            ) from e
        patch_moto_change_set_outputs()
        port = self.port or _free_port()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        self.aws_url = f"http://127.0.0.1:{port}"
        self.omics = FakeOmics().start()
        self.receiver = CallbackReceiver(token=self.token).start()
        self.clients = ClientFactory(
            region=REGION,
            endpoint_url=self.aws_url,
            service_endpoints={"omics": self.omics.url},
            credentials=LOCAL_CREDENTIALS,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.receiver.stop()
        self.omics.stop()
        self._moto.stop()
