"""The RunPod-compatible fake of tests/servers, served for the benches.

    python -m bench.fake_runpod --port 0

The same app as `python -m tests.servers.runpod_fake` (manual jobs, no API key),
but without uvicorn's per-request access log and on httptools: the fake shares
the machine's CPUs with the server under test, and at thousands of /status
calls a second its own logging would take a visible share of them. The first
line on stdout is `listening on <endpoint url>`.
"""

from __future__ import annotations

import argparse
import socket

import uvicorn

from bench.harness import raise_nofile
from tests.servers.runpod_app import create_app
from tests.servers.runpod_fake import DEFAULT_ENDPOINT_ID


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    raise_nofile()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}/v2/{DEFAULT_ENDPOINT_ID}", flush=True)
    config = uvicorn.Config(
        create_app(),
        log_level="warning",
        access_log=False,
        lifespan="on",
        backlog=4096,
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
