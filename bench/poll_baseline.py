"""The design the API replaces: a REST status route that asks RunPod on every call.

    python -m bench.poll_baseline --port P --runpod-url http://127.0.0.1:9000/v2/ID

`GET /status/{runpod_id}` forwards to RunPod's `GET /status/{id}` through one
shared httpx client and returns its answer, so every watcher polling it costs
RunPod one call per poll. At most 50 RunPod calls are in flight, like the
API's RunPod connection pool (RUNPOD_MAX_CONCURRENCY).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bench.harness import raise_nofile

MAX_CONCURRENCY = 50


def create_app(runpod_url: str) -> FastAPI:
    client = httpx.AsyncClient(
        base_url=runpod_url,
        timeout=30,
        limits=httpx.Limits(
            max_connections=MAX_CONCURRENCY, max_keepalive_connections=MAX_CONCURRENCY
        ),
    )
    # httpx's pool spends O(waiting requests) on each request it hands out, so with
    # hundreds waiting it melts down; queue them here instead, as the API's tracker does.
    gate = asyncio.Semaphore(MAX_CONCURRENCY)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.get("/status/{job_id}")
    async def status(job_id: str) -> JSONResponse:
        async with gate:
            answer = await client.get(f"/status/{job_id}")
        return JSONResponse(answer.json(), status_code=answer.status_code)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runpod-url", required=True)
    args = parser.parse_args()
    raise_nofile()
    uvicorn.run(create_app(args.runpod_url), host="127.0.0.1", port=args.port, backlog=4096)


if __name__ == "__main__":
    main()
