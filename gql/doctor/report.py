"""The doctor's results for people (a table) and for machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from gql.doctor.outcome import CheckResult, Status

SYMBOLS = {Status.PASS: "✓", Status.WARN: "!", Status.FAIL: "✗"}


def render_table(results: Sequence[CheckResult]) -> str:
    width = max(len(result.name) for result in results)
    lines = [
        f"{SYMBOLS[result.outcome.status]} {result.name.ljust(width)}  {result.outcome.detail}"
        for result in results
    ]
    failed = sum(result.failed for result in results)
    lines.append(f"{failed} of {len(results)} checks failed" if failed else "every check passed")
    return "\n".join(lines)


def render_json(results: Sequence[CheckResult]) -> str:
    return json.dumps(
        {
            "ok": not any(result.failed for result in results),
            "checks": [
                {
                    "name": result.name,
                    "status": str(result.outcome.status),
                    "detail": result.outcome.detail,
                }
                for result in results
            ],
        },
        indent=2,
        ensure_ascii=False,
    )
