"""A local stand-in for AWS and the NGS360 API: moto, a HealthOmics fake and a callback receiver.

Everything listens on 127.0.0.1 and lives in this process. `clients` reaches all of it
without touching the process environment.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.ops.fake_omics import FakeOmics
from omics_edp_cli.ops.receiver import CallbackReceiver

REGION = "us-east-1"
LOCAL_CREDENTIALS = ("omics-edp-local", "omics-edp-local")


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
