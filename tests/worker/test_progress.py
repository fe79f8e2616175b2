from __future__ import annotations

from typing import Any

from worker.progress import ProgressReporter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reporter() -> tuple[ProgressReporter, list[dict[str, Any]], Clock]:
    sent: list[dict[str, Any]] = []
    clock = Clock()
    return ProgressReporter({"id": "j"}, lambda _j, p: sent.append(p), clock=clock), sent, clock


def test_sends_every_two_points() -> None:
    progress, sent, _ = reporter()

    for value in [0, 0.5, 1, 1.9, 2, 3, 3.9, 4.2]:
        progress.update(value, "Rendering")

    assert [p["progress"] for p in sent] == [0, 2, 4]


def test_sends_a_smaller_change_after_a_second() -> None:
    progress, sent, clock = reporter()
    progress.update(10, "Rendering")
    clock.now = 0.5
    progress.update(11, "Rendering")
    clock.now = 1.01
    progress.update(11, "Rendering")
    clock.now = 5.0
    progress.update(11, "Rendering")  # nothing new to say

    assert [p["progress"] for p in sent] == [10, 11]


def test_never_goes_back_and_a_new_message_is_sent_at_once() -> None:
    progress, sent, _ = reporter()
    progress.update(50, "Rendering")
    progress.update(40, "Rendering")
    progress.update(40, "Uploading output")
    progress.finish("Export complete")

    assert sent == [
        {"progress": 50, "message": "Rendering"},
        {"progress": 50, "message": "Uploading output"},
        {"progress": 100, "message": "Export complete"},
    ]


def test_a_failing_sink_does_not_fail_the_export() -> None:
    def broken(_job: Any, _payload: Any) -> None:
        raise ConnectionError("down")

    progress = ProgressReporter({"id": "j"}, broken)
    progress.update(10, "Rendering")
    progress.finish("done")
