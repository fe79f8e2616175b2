"""The start-export baseline: one FastAPI REST route doing the same database and RunPod work.

    python -m bench.rest_baseline --port P --data-dir DIR --runpod-url URL --secret S

`POST /exports` (JSON: projectId, effectType, highlightRegions; `Authorization:
Bearer <JWT>`) checks the token, validates the body (pydantic, then the same
domain checks as the API), reads the project and its newest working video,
inserts the job row through the same `databases`/SQLite repository, calls the
RunPod endpoint's `/run` with httpx (same payload and webhook URL), stores the
RunPod id and answers. No GraphQL, no tracker: the work of a start mutation,
done inline.
"""

from __future__ import annotations

import argparse
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

from bench.harness import raise_nofile
from gql.assets.repository import AssetRepository, working_video_key
from gql.auth.tokens import Authenticator, AuthError
from gql.clock import utcnow
from gql.db.database import Database
from gql.jobs.errors import ExportError
from gql.jobs.models import ExportJob, ExportKind, ExportStatus
from gql.jobs.quotas import StartQuota
from gql.jobs.repository import JobRepository
from gql.jobs.requests import ExportRequest, validated
from gql.jobs.service import output_key


# Field names are the JSON ones: the same body the GraphQL input takes.
class Keyframe(BaseModel):
    time: float
    x: float
    y: float
    radiusX: float
    radiusY: float


class Region(BaseModel):
    startTime: float
    endTime: float
    keyframes: list[Keyframe]


class StartOverlay(BaseModel):
    projectId: int
    effectType: str
    highlightRegions: list[Region]


# As for the API under bench: the same quota checks, never in the way.
UNLIMITED = StartQuota(max_active=10**9, max_per_minute=10**9)


def create_app(database_url: str, runpod_url: str, secret: str, public_url: str) -> FastAPI:
    database = Database(database_url)
    jobs = JobRepository(database, lease_owner="rest-baseline")
    assets = AssetRepository(database)
    authenticator = Authenticator(secret)
    runpod = httpx.AsyncClient(base_url=runpod_url, timeout=30)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await database.connect()
        yield
        await runpod.aclose()
        await database.disconnect()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    @app.post("/exports")
    async def start(
        body: StartOverlay, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        try:
            user_id = await authenticator.user_from_authorization(authorization)
        except AuthError as error:
            raise HTTPException(401, str(error)) from None
        if user_id is None:
            raise HTTPException(401, "missing token")
        params = body.model_dump(exclude={"projectId"})
        try:
            request = validated(
                ExportRequest(
                    kind=ExportKind.OVERLAY,
                    project_id=body.projectId,
                    game_id=None,
                    params=params,
                    idempotency_key=None,
                )
            )
        except ExportError as error:
            raise HTTPException(422, str(error)) from None
        project = await assets.project_for_user(body.projectId, user_id)
        working = project.working_filename if project else None
        if working is None:
            raise HTTPException(404, "no such project or no working video")
        # The API reads the input's length too (for RunPod's execution timeout).
        await assets.duration_of(working_video_key(working))
        job = new_job(user_id, request, working_video_key(working))
        stored = await jobs.insert(job, UNLIMITED)
        assert stored is not None
        payload = {
            "job_id": stored.id,
            "user_id": user_id,
            "type": stored.kind.value,
            "input_key": stored.input_key,
            "output_key": stored.output_key,
            "params": dict(stored.params),
        }
        webhook = f"{public_url}/webhooks/runpod?job={stored.id}&token={stored.webhook_token}"
        answer = await runpod.post("/run", json={"input": payload, "webhook": webhook})
        answer.raise_for_status()
        accepted = answer.json()
        saved = await jobs.save(
            stored.evolve(status=ExportStatus.QUEUED, runpod_id=accepted["id"]),
            expected_version=stored.version,
        )
        return {"id": saved.id, "status": saved.status.value}

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


def new_job(user_id: str, request: ExportRequest, input_key: str) -> ExportJob:
    now = utcnow()
    job_id = str(uuid.uuid4())
    return ExportJob(
        id=job_id,
        user_id=user_id,
        kind=request.kind,
        status=ExportStatus.PENDING,
        progress=0,
        message="Waiting to be submitted",
        error=None,
        project_id=request.project_id,
        game_id=None,
        params=request.params,
        input_key=input_key,
        output_key=output_key(request.kind, job_id),
        runpod_id=None,
        webhook_token=secrets.token_urlsafe(24),
        idempotency_key=None,
        attempts=1,
        next_attempt_at=None,
        cancel_pending=False,
        retry_of=None,
        result=None,
        version=1,
        created_at=now,
        updated_at=now,
        started_at=None,
        completed_at=None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runpod-url", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    raise_nofile()
    public_url = f"http://127.0.0.1:{args.port}"
    app = create_app(args.database_url, args.runpod_url, args.secret, public_url)
    uvicorn.run(app, host="127.0.0.1", port=args.port, backlog=4096)


if __name__ == "__main__":
    main()
