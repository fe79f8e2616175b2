"""RunPod down, throttling, failing and slow: every job completes once, mutations stay fast.

One API process serves the whole module; each case tells its own jobs apart by id.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.servers.runpod_control import RunPodControl
from tests.servers.runpod_fake import RunPodServerProcess
from tests.support.api_process import ApiProcess, read_only
from tests.support.assets import seed_assets
from tests.support.exports import job_state, start_overlay
from tests.support.graphql import GraphQLHTTP
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

# The full case is a 60 s outage (FAULTS_OUTAGE_S=60); CI runs a shorter one.
OUTAGE_S = float(os.environ.get("FAULTS_OUTAGE_S", "15"))
IN_FLIGHT, STARTED_DURING_OUTAGE = 50, 20
POLL_INTERVAL_S = 1.0
NORMAL_WINDOW_S = 3.0
MUTATION_BUDGET_S = 0.2


@pytest.fixture(scope="module")
def server(
    runpod_process: RunPodServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    env = {
        "DATA_DIR": str(tmp_path_factory.mktemp("runpod-faults")),
        "RUNPOD_ENDPOINT_URL": runpod_process.url,
        "POLL_INTERVAL_S": str(POLL_INTERVAL_S),
    }
    with ApiProcess(env) as process:
        yield process


@pytest.fixture(scope="module")
async def project_id(server: ApiProcess) -> int:
    return (await seed_assets(server.settings, "local")).project_id


@pytest.fixture
async def client(server: ApiProcess) -> AsyncIterator[GraphQLHTTP]:
    async with GraphQLHTTP(server.graphql_url) as http:
        yield http


@pytest.fixture
def rows(server: ApiProcess) -> Iterator[sqlite3.Connection]:
    connection = read_only(server)
    yield connection
    connection.close()


async def timed_starts(client: GraphQLHTTP, project_id: int, count: int) -> tuple[list[str], float]:
    """Start `count` exports one after another; returns their ids and the slowest answer."""
    job_ids, slowest = [], 0.0
    for _ in range(count):
        began = time.perf_counter()
        job_ids.append(await start_overlay(client, project_id))
        slowest = max(slowest, time.perf_counter() - began)
    return job_ids, slowest


def statuses(rows: sqlite3.Connection, job_ids: list[str]) -> Counter[str]:
    marks = ",".join("?" * len(job_ids))
    query = f"SELECT status FROM export_jobs WHERE id IN ({marks})"
    return Counter(status for (status,) in rows.execute(query, job_ids))


def all_in(rows: sqlite3.Connection, job_ids: list[str], status: str) -> bool:
    return statuses(rows, job_ids) == Counter({status: len(job_ids)})


def runs_per_job(control: RunPodControl) -> Counter[str]:
    return Counter(str(run.input["job_id"]) for run in control.runs())


def requests_so_far(control: RunPodControl) -> int:
    return sum(control.counts().routes.values())


async def requests_per_second(control: RunPodControl, seconds: float) -> list[float]:
    """RunPod requests in each second of the next `seconds` (the last one may be shorter)."""
    rates, seen, began = [], requests_so_far(control), time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        window = min(1.0, seconds - elapsed)
        await asyncio.sleep(window)
        now = requests_so_far(control)
        rates.append((now - seen) / window)
        seen = now
    return rates


async def test_an_outage_loses_nothing_duplicates_nothing_and_is_not_hammered(
    server: ApiProcess,
    project_id: int,
    client: GraphQLHTTP,
    rows: sqlite3.Connection,
    control: RunPodControl,
) -> None:
    """50 jobs running and 20 started while RunPod is down for OUTAGE_S seconds.

    The outage lasts 15 s by default, to keep the suite fast; FAULTS_OUTAGE_S=60
    runs it for the full minute. RunPod drops every connection meanwhile, and
    counts each attempt.
    """
    in_flight, _ = await timed_starts(client, project_id, IN_FLIGHT)
    await eventually(lambda: len(control.runs()) == IN_FLIGHT)
    for run in control.runs():
        control.progress(run.id, 20, "encoding")
    await eventually(lambda: all_in(rows, in_flight, "processing"))
    control.reset_counts()
    await asyncio.sleep(NORMAL_WINDOW_S)
    normal_rate = requests_so_far(control) / NORMAL_WINDOW_S

    control.set_down("drop")
    control.reset_counts()
    during, slowest = await timed_starts(client, project_id, STARTED_DURING_OUTAGE)
    per_second = await requests_per_second(control, OUTAGE_S)
    outage_rate = requests_so_far(control) / OUTAGE_S
    control.set_down(None)

    everyone = in_flight + during
    await eventually(lambda: len(control.runs()) == len(everyone), timeout=30)
    for run in control.runs():
        control.complete(run.id)
    await eventually(lambda: all_in(rows, everyone, "complete"), timeout=30)

    print(
        f"RunPod requests/s: {normal_rate:.0f} normally, {outage_rate:.1f} while down"
        f" (busiest second {max(per_second):.0f}); slowest start {slowest * 1000:.0f} ms"
    )
    assert normal_rate >= IN_FLIGHT / POLL_INTERVAL_S * 0.5  # the baseline is real polling
    assert max(per_second) <= 2 * normal_rate, (per_second, normal_rate)
    assert outage_rate <= 2 * normal_rate
    assert slowest < MUTATION_BUDGET_S
    assert runs_per_job(control) == Counter(dict.fromkeys(everyone, 1))
    assert Counter(job.status for job in control.jobs()) == Counter({"COMPLETED": len(everyone)})
    for job_id in everyone:
        final = await job_state(client, job_id)
        assert (final["status"], final["progress"], final["error"]) == ("COMPLETE", 100, None)
    assert "database is locked" not in server.log()


@pytest.mark.parametrize(
    ("fault", "options"),
    [
        ("429", {"count": 1_000_000, "every": 2, "retry_after": None}),
        ("500", {"count": 6}),
        ("503", {"count": 6}),
        ("delay", {"count": 1_000_000, "delay": 5.0}),
    ],
    ids=["429-on-half", "500-burst", "503-burst", "5s-latency"],
)
async def test_flaky_runpod_still_completes_every_job_and_never_slows_a_mutation(
    project_id: int,
    client: GraphQLHTTP,
    rows: sqlite3.Connection,
    control: RunPodControl,
    fault: str,
    options: dict[str, object],
) -> None:
    """Every other request answered 429 (no Retry-After), six 500s or 503s in a row,
    or every request held 5 s before RunPod handles it: each of ten exports completes
    on exactly one RunPod run, and no start mutation waits on RunPod."""
    control.set_behaviour("auto", step=0.05)
    control.inject(fault, **options)  # type: ignore[arg-type]

    job_ids, slowest = await timed_starts(client, project_id, 10)

    await eventually(lambda: all_in(rows, job_ids, "complete"), timeout=60)
    print(f"{fault}: slowest start {slowest * 1000:.0f} ms")
    assert slowest < MUTATION_BUDGET_S
    assert runs_per_job(control) == Counter(dict.fromkeys(job_ids, 1))
    assert Counter(job.status for job in control.jobs()) == Counter({"COMPLETED": 10})
    injected = int(options["count"])  # type: ignore[call-overload]
    served = injected - sum(left.count for left in control.faults())
    # A burst is answered whole; the endless faults kept hitting.
    assert served >= min(injected, 10)
