"""CPU per stored job read and per change message, by the size of the job's params.

    python bench/job_rows.py [--repeat 5]

A framing job's params hold its crop keyframes, one per tracked frame at most,
so they range from under 1 KB to tens of KB. For framing params of 10, 300 and
900 keyframes, times (best of `--repeat` batches of 300, in µs):

- from_row: `ExportJob.from_row` on a stored row, what every row read costs (a
  page of the list query is up to 100 of them);
- message:  `job_message` at the feed's real limit (`MAX_PAYLOAD_BYTES`), what
  each change costs the process that writes it on PostgreSQL; `carries_row`
  says whether the row fits in it or only the ids go;
- receive:  `decode_message` and the job out of it, in a process that watches
  the job (only when the message carries the row).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_baseline import new_job
from gql.cluster.feed import decode_message, job_message
from gql.cluster.pg_feed import MAX_PAYLOAD_BYTES
from gql.jobs.models import ExportJob, ExportKind, ExportStatus
from gql.jobs.repository import row_values
from gql.jobs.requests import ExportRequest

KEYFRAMES = (10, 300, 900)
BATCH = 300


def framing_params(keyframes: int) -> dict[str, Any]:
    crop = [
        {"time": round(i / 30, 3), "x": 100 + i, "y": 50 + i, "width": 320, "height": 180}
        for i in range(keyframes)
    ]
    return {"cropKeyframes": crop, "outputWidth": 640, "outputHeight": 360}


def stored_row(keyframes: int) -> dict[str, Any]:
    request = ExportRequest(
        kind=ExportKind.FRAMING,
        project_id=1,
        game_id=None,
        params=framing_params(keyframes),
        idempotency_key=None,
    )
    job = new_job("alice", request, "raw/clip.mp4").evolve(
        status=ExportStatus.PROCESSING, progress=42, message="encoding", runpod_id="r" * 36
    )
    return row_values(job)


def best_us(work: Any, repeat: int) -> float:
    return round(min(timeit.repeat(work, number=BATCH, repeat=repeat)) / BATCH * 1e6, 1)


def measure(keyframes: int, repeat: int) -> dict[str, Any]:
    row = stored_row(keyframes)
    job = ExportJob.from_row(row)
    message = job_message("bench", job, max_bytes=MAX_PAYLOAD_BYTES)
    decoded = decode_message(message)
    carries_row = decoded is not None and decoded.row is not None
    result: dict[str, Any] = {
        "params_kb": round(len(row["params"]) / 1024, 1),
        "from_row_us": best_us(lambda: ExportJob.from_row(row), repeat),
        "message_us": best_us(
            lambda: job_message("bench", job, max_bytes=MAX_PAYLOAD_BYTES), repeat
        ),
        "carries_row": carries_row,
    }
    if carries_row:

        def receive() -> ExportJob | None:
            received = decode_message(message)
            return received.job() if received is not None else None

        result["receive_us"] = best_us(receive, repeat)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({str(n): measure(n, args.repeat) for n in KEYFRAMES}, indent=2))


if __name__ == "__main__":
    main()
