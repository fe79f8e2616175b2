"""The execution policy sent with each `/run`: how long RunPod lets the job run and live.

Without one, every export gets the endpoint's default execution timeout (10
minutes unless changed), whatever the length of its input. Here:

    executionTimeout = clamp(base + per_second * kind_factor * input_seconds, floor, ceiling)
    ttl              = max(job TTL, executionTimeout + 10 minutes)

`input_seconds` is the video the export processes (`gql.jobs.requests.input_seconds`);
when it is not known the timeout is the ceiling. RunPod counts a job's TTL from
its submission, time in the queue included, so the TTL always leaves room for a
whole run after a long wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gql.jobs.models import ExportJob, ExportKind

# Annotate exports cut, caption and join clips: more work per second of output.
KIND_FACTORS = {ExportKind.FRAMING: 1.0, ExportKind.OVERLAY: 1.0, ExportKind.ANNOTATE: 1.5}
# RunPod refuses an execution timeout under 5 s and a TTL under 10 s.
RUNPOD_MIN_TIMEOUT_S = 5
TTL_HEADROOM_S = 600


@dataclass(frozen=True, kw_only=True)
class ExecutionPolicy:
    base_s: float
    per_input_second_s: float
    floor_s: float
    ceiling_s: float
    job_ttl_s: float

    def timeout_s(self, kind: ExportKind, input_seconds: float | None) -> int:
        if input_seconds is None:
            return math.ceil(self.ceiling_s)
        wanted = self.base_s + self.per_input_second_s * KIND_FACTORS[kind] * input_seconds
        return math.ceil(max(self.floor_s, RUNPOD_MIN_TIMEOUT_S, min(wanted, self.ceiling_s)))

    def for_job(self, job: ExportJob) -> dict[str, Any]:
        """RunPod's `policy` object (milliseconds)."""
        timeout_s = self.timeout_s(job.kind, job.input_seconds)
        ttl_s = max(self.job_ttl_s, timeout_s + TTL_HEADROOM_S)
        return {"executionTimeout": timeout_s * 1000, "ttl": math.ceil(ttl_s * 1000)}
