"""The system under test: the RunPod fake and the API (`export-gql serve`), as processes.

The API runs with production settings: authentication on, a real RunPod
endpoint URL (the fake), webhooks through PUBLIC_URL, SQLite in a fresh DATA_DIR
(or a PostgreSQL database shared by several APIs).
Jobs are started through the real start mutation, then held IN_PROGRESS on the
fake, where the benches move them.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.harness import PYTHON, ROOT, Process, Processes, StartError, free_port
from gql.auth.tokens import Authenticator
from gql.config.settings import Settings
from tests.servers.runpod_control import RunPodControl
from tests.support.assets import seed_assets
from tests.support.queries import GET_JOB, START_OVERLAY, WATCH_JOB, overlay_input

SECRET = "bench-secret-long-enough-for-hs256-signatures"
USER = "bench-user"
START_TIMEOUT_S = 30.0
QUERY = WATCH_JOB
"""What every subscriber asks for: the README's `exportJob` subscription."""

# Start mutations ask for the job's id and status only, as a client that then
# subscribes would.
START_MUTATION = """
mutation Start($input: OverlayExportInput!) {
  startOverlayExport(input: $input) { job { id status } userErrors { field message code } }
}
"""


@dataclass(frozen=True)
class Job:
    index: int
    id: str
    """The API's job id (what subscribers watch)."""
    runpod_id: str
    """The fake's job id (what the driver moves)."""

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "runpod_id": self.runpod_id}


class Fake:
    """The RunPod fake in its own process."""

    def __init__(self, processes: Processes, name: str = "runpod-fake") -> None:
        argv = [PYTHON, "-m", "tests.servers.runpod_fake", "--port", "0", "--bench"]
        self.process = processes.start(name, argv)
        line = self.process.wait_for_line("listening on ", START_TIMEOUT_S)
        self.url = line.split()[-1]
        self.base_url = self.url.split("/v2/")[0]
        self.port = int(self.base_url.rsplit(":", 1)[1])
        self.control = RunPodControl(self.base_url)
        self.control.wait_ready(START_TIMEOUT_S)

    def run_by_itself(self, *, workers: int, steps: int, step_s: float) -> None:
        """Jobs submitted from now on wait for one of `workers`, then report `steps`
        progress steps `step_s` apart and complete, with their webhook."""
        self.control.set_workers(workers)
        self.control.set_behaviour("auto", step=step_s, steps=steps, queue_delay=0.0)

    def create_job(self) -> str:
        """A job on the fake alone (no API behind it), held IN_PROGRESS."""
        response = httpx.post(f"{self.url}/run", json={"input": {"bench": True}}, timeout=10)
        response.raise_for_status()
        job_id: str = response.json()["id"]
        self.control.progress(job_id, 1)
        return job_id


def _clean_environment() -> dict[str, str]:
    """This environment without anything the API's settings would read."""
    known = {name.upper() for name in Settings.model_fields}
    return {key: value for key, value in os.environ.items() if key.upper() not in known}


class Api:
    """`export-gql serve` on a free port, its data in `data_dir`, pointed at `fake`."""

    def __init__(
        self,
        processes: Processes,
        fake: Fake,
        data_dir: Path,
        *,
        poll_interval_s: float,
        name: str = "api",
        database_url: str | None = None,
        settings: dict[str, Any] | None = None,
        root: Path = ROOT,
    ) -> None:
        """`settings` add to (or replace) the bench's own; `root` is the checkout whose
        API runs (another commit's, for a baseline measured side by side), with the
        Python of its `.venv` when it has one."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.fake = fake
        self.token = Authenticator(SECRET).issue(USER, ttl=timedelta(hours=6))
        data_dir.mkdir(parents=True, exist_ok=True)
        values: dict[str, Any] = {
            "environment": "production",
            "host": "127.0.0.1",
            "port": self.port,
            "public_url": self.url,
            "data_dir": str(data_dir),
            "runpod_endpoint_url": fake.url,
            "poll_interval_s": poll_interval_s,
            "auth_jwt_secret": SECRET,
            "local_worker": False,
            # The benches start thousands of exports for one user.
            "max_active_exports_per_user": 10**9,
            "max_starts_per_minute_per_user": 10**9,
            "max_connections_per_user": 10**9,
        }
        if database_url is not None:
            values["database_url"] = database_url
        values.update(settings or {})
        self.settings = Settings.model_validate(values)
        seeded = asyncio.run(seed_assets(self.settings, USER))
        self.project_id, self.game_id = seeded.project_id, seeded.game_id
        env = _clean_environment() | {key.upper(): str(value) for key, value in values.items()}
        env["PYTHONPATH"] = str(root)
        python = root / ".venv" / "bin" / "python"
        self._processes, self._name, self._env, self._cwd = processes, name, env, data_dir
        self._argv = [str(python) if python.exists() else PYTHON, "-m", "gql.cli", "serve"]
        self.lives: list[Process] = []
        """Every process this API ran as, the current one last (see `restart`)."""
        self.process = self._start(name)
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=20
        )

    def _start(self, name: str) -> Process:
        # Run from the data folder, so no `.env` of the checkout is read.
        process = self._processes.start(name, self._argv, env=self._env, cwd=self._cwd)
        self.lives.append(process)
        process.wait_http(f"{self.url}/healthz", START_TIMEOUT_S)
        return process

    def kill(self) -> None:
        """`kill -9` the process, and wait until it is gone."""
        self.process.popen.kill()
        self.process.popen.wait()
        self._processes.stop(self.process)

    def restart(self) -> None:
        """Start the API again on the same port and settings, once `kill`ed; each life
        logs to its own file (`api-0`, `api-0.2`, ...)."""
        self.process = self._start(f"{self._name}.{len(self.lives) + 1}")

    def close(self) -> None:
        self.http.close()

    def process_id(self) -> str:
        """This API's id in the cluster (the owner named on its job leases)."""
        return str(self.http.get("/healthz").json()["checks"]["leases"]["process"])

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    def start_body(self) -> bytes:
        """The HTTP body of one start mutation on the seeded project."""
        variables = {"input": overlay_input(self.project_id)}
        return json.dumps({"query": START_MUTATION, "variables": variables}).encode()

    def start_jobs(self, count: int) -> list[str]:
        """`count` exports started through the API, as fast as one client can; their ids."""
        ids = []
        for _ in range(count):
            data = self.graphql(START_MUTATION, {"input": overlay_input(self.project_id)})
            result = data["startOverlayExport"]
            if result["userErrors"]:
                raise RuntimeError(f"start refused: {result['userErrors']}")
            ids.append(str(result["job"]["id"]))
        return ids

    def create_jobs(self, count: int, timeout: float = 20.0) -> list[Job]:
        """`count` jobs started through the API and held IN_PROGRESS (progress 1)."""
        ids = []
        for _ in range(count):
            data = self.graphql(START_OVERLAY, {"input": overlay_input(self.project_id)})
            result = data["startOverlayExport"]
            if result["userErrors"]:
                raise RuntimeError(f"start refused: {result['userErrors']}")
            ids.append(result["job"]["id"])
        deadline = time.monotonic() + timeout
        runpod_ids: dict[str, str] = {}
        while len(runpod_ids) < count:
            runpod_ids = {
                str(run.input["job_id"]): run.id
                for run in self.fake.control.runs()
                if run.input.get("job_id") in ids
            }
            if time.monotonic() > deadline:
                raise StartError(f"only {len(runpod_ids)} of {count} jobs reached the fake")
            time.sleep(0.05)
        jobs = [Job(index, job_id, runpod_ids[job_id]) for index, job_id in enumerate(ids)]
        for job in jobs:
            self.fake.control.progress(job.runpod_id, 1)
            self.fake.control.fire_webhook(job.runpod_id)
        for job in jobs:
            while self.graphql(GET_JOB, {"id": job.id})["exportJob"]["status"] != "PROCESSING":
                if time.monotonic() > deadline:
                    raise StartError(f"job {job.id} did not reach PROCESSING")
                time.sleep(0.05)
        return jobs


def start_apis(
    processes: Processes,
    fake: Fake,
    folder: Path,
    count: int,
    *,
    poll_interval_s: float,
    database_url: str | None = None,
    root: Path = ROOT,
) -> list[Api]:
    """`count` APIs named api-0, api-1, ..., each with its data in a folder of that name."""
    return [
        Api(
            processes,
            fake,
            folder / f"api-{index}",
            poll_interval_s=poll_interval_s,
            name=f"api-{index}",
            database_url=database_url,
            root=root,
        )
        for index in range(count)
    ]


def ws_target(url: str, token: str | None) -> dict[str, Any]:
    """What a load generator needs to subscribe: the URL, the token and the query."""
    return {"url": url, "token": token, "query": QUERY}
