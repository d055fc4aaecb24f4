"""The local AWS (moto's server) in a process of its own: `python -m omics_edp_cli.local.aws_process PORT`.

Started by `sandbox.LocalAws`. It prints `READY` on stdout once it serves on 127.0.0.1:PORT and
exits when its stdin closes: the parent stopping it, or the parent ending in any way (even
killed), so it never outlives the sandbox. Ctrl-C in a terminal reaches the whole process group;
this process ignores it and lets the parent decide.

In a process of its own, moto's work (importing its CloudFormation, ~1.5 s; answering every
request) runs on another core than the caller's, at the same time.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any


def speed_up_botocore() -> None:
    """Parse botocore's data files (endpoints, service models) once, with msgspec, and list its
    services once.

    moto makes a boto3 session for most backends and for each region listing, and each session
    parsed them again (~40% of this process's time); msgspec parses 2-4 times as fast as the
    standard library with botocore's OrderedDict hook (plain dicts keep the order as well).
    Before moto is imported: it does so then.
    """
    import functools

    import botocore.loaders
    import msgspec

    json_loader: Any = botocore.loaders.JSONFileLoader
    decode = msgspec.json.decode

    def _load_file(self: Any, full_path: str, open_method: Any) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as fp:
            return decode(fp.read())

    json_loader._load_file = _load_file
    load_file = json_loader.load_file
    loaded = functools.lru_cache(maxsize=None)(lambda path: load_file(json_loader(), path))
    json_loader.load_file = lambda self, file_path: loaded(file_path)
    loader: Any = botocore.loaders.Loader
    listing = loader.list_available_services
    listed: dict[tuple[Any, ...], Any] = {}

    def list_available_services(self: Any, type_name: str) -> Any:
        key = (tuple(self.search_paths), type_name)
        if key not in listed:
            listed[key] = listing(self, type_name)
        return listed[key]

    loader.list_available_services = list_available_services


def _replace_once(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """`owner.name = make(original)`, marked, so that a second call leaves it as it is; nothing
    when this version of the library has no such attribute (they are its internals)."""
    original = getattr(owner, name, None)
    if original is None or getattr(original, "_omics_edp_fixed", False):
        return
    replacement = make(original)
    replacement._omics_edp_fixed = True
    setattr(owner, name, replacement)


def parse_moto_resources_faster() -> None:
    """moto's data files (EC2's instance types, ~100 files read when its CloudFormation is
    imported) parsed by msgspec, twice as fast; the same values. Before moto's services are
    imported: they bind `load_resource` then."""
    import gzip

    import moto.utilities.utils as utils
    import msgspec

    decode = msgspec.json.decode

    def load_resource(resource: str) -> Any:
        compressed = resource if resource.endswith(".gz") else f"{resource}.gz"
        try:
            data = gzip.decompress(utils.load_resource_as_bytes(compressed))
        except FileNotFoundError:
            data = utils.load_resource_as_bytes(resource)
        return decode(data)

    utils.load_resource = load_resource


def read_the_clock_directly() -> None:
    """moto's `unix_time()` (now, in seconds) from `time.time()`: the same number, without the
    three datetimes it built, on every visibility check of every SQS message (moto counts a
    queue's messages for each message sent to it). Before moto's services are imported: they
    bind the name then."""
    import time

    import moto.core.utils as utils

    def make(original: Any) -> Any:
        def unix_time(dt: Any = None) -> float:
            return time.time() if dt is None else float(original(dt))
        return unix_time

    _replace_once(utils, "unix_time", make)


def build_urls_lazily() -> None:
    """Compile a werkzeug URL rule's URL builders when a URL is first built from it, not when it is
    added to its map.

    moto makes a Flask app per service on first use, adding ~20-120 rules (Lambda's first request
    cost 60 ms, most of it generating and compiling two builder functions per rule); moto routes
    requests but never builds a URL. Same builders, built on demand. Idempotent.
    """
    from werkzeug.routing.rules import Rule

    def make(original: Any) -> Any:
        def _compile_builder(self: Any, append_unknown: bool = True) -> Any:
            compiled: Any = None

            def builder(rule: Any, *args: Any, **kwargs: Any) -> Any:
                nonlocal compiled
                if compiled is None:
                    compiled = original(rule, append_unknown)
                return compiled(rule, *args, **kwargs)

            return builder
        return _compile_builder

    # Another werkzeug may have no such (private) method: builders are then compiled as it does.
    _replace_once(Rule, "_compile_builder", make)


def speed_up_moto() -> None:
    """Spare this process work moto repeats (it lives only as the sandbox's local AWS).

    - the list of moto's services is read from disk once, not on every request;
    - CloudFormation templates are parsed by libyaml when PyYAML has it (same result);
    - KMS keys that are not asymmetric share one RSA key, which they never use, instead of
      generating 2048 bits for each;
    - SQS retention checked in constant time (`read_retention_period_directly`);
    - URL builders of each service's routes compiled only if used (`build_urls_lazily`).
    """
    import functools

    import moto.backends
    import moto.kms.models
    import yaml
    from moto.cloudformation.utils import yaml_tag_constructor

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    if getattr(yaml, "__with_libyaml__", False):
        class TemplateLoader(yaml.CLoader):  # type: ignore[name-defined,misc]
            pass

        TemplateLoader.add_multi_constructor("", yaml_tag_constructor)
        yaml.Loader = TemplateLoader  # type: ignore[misc,assignment]

    generate = moto.kms.models.generate_private_key
    shared = functools.cache(generate)

    def generate_private_key(key_spec: str) -> Any:
        if key_spec.startswith(("RSA_", "ECC_", "SM2")):
            return generate(key_spec)
        return shared("SYMMETRIC_DEFAULT")

    moto.kms.models.generate_private_key = generate_private_key
    read_retention_period_directly()
    build_urls_lazily()


def read_retention_period_directly() -> None:
    """Check a received message's retention period from its queue's field, in constant time.

    moto 5.2 reads it, for every message it hands out, through GetQueueAttributes, which builds
    every attribute of the queue three times, each time walking all its messages: 60 messages
    on a queue cost ~0.1 s of CPU. Same answer. Idempotent.
    """
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def make(original: Any) -> Any:
        def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
            retention_period = self.get_queue(queue_name).message_retention_period
            return bool(retention_period + message.sent_timestamp / 1000 > unix_time())
        return is_message_valid_based_on_retention_period

    _replace_once(SQSBackend, "is_message_valid_based_on_retention_period", make)


def serve(port: int) -> None:
    speed_up_botocore()
    parse_moto_resources_faster()
    read_the_clock_directly()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from omics_edp_cli.local.sandbox import patch_moto

    patch_moto()
    speed_up_moto()
    # The local AWS answers errors with HTTP 500 and werkzeug logs each traceback; the caller
    # already sees the error, one line, through boto3.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    # "No Moto CloudFormation support for ..." is expected (DESIGN §6), not news.
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", module="moto")
    class Handler(MotoRequestHandler):  # type: ignore[misc]
        # Headers and body go out in two writes: without it, the body of every answer on a
        # kept-alive connection waits for the client's delayed ACK (~40 ms).
        disable_nagle_algorithm = True

    server = make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app),
                         threaded=True, request_handler=Handler)
    # What is loaded by now lives as long as the process: the collector stops walking it.
    gc.freeze()
    gc.enable()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.buffer.read()  # until EOF: the parent is done


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Importing moto makes no garbage worth collecting, and collecting cost ~0.2 s of CPU.
    gc.disable()
    serve(int(argv[1]))
    # Nothing to save: skip the interpreter's teardown of moto's many modules and threads.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
