"""The local AWS (moto's server) in a process of its own: `python -m omics_edp_cli.local.aws_process PORT`.

Started by `sandbox.LocalAws`. It prints `READY` on stdout once it serves on 127.0.0.1:PORT and
exits when its stdin closes: the parent stopping it, or the parent ending in any way (even
killed), so it never outlives the sandbox. Ctrl-C in a terminal reaches the whole process group;
this process ignores it and lets the parent decide.

In a process of its own, moto's work (importing its CloudFormation, ~1.5 s; answering every
request) runs on another core than the caller's, at the same time.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings


def serve(port: int) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from omics_edp_cli.local.sandbox import patch_moto

    patch_moto()
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
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    sys.stdin.buffer.read()  # until EOF: the parent is done


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(int(argv[1]))
    # Nothing to save: skip the interpreter's teardown of moto's many modules and threads.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
