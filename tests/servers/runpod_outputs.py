"""What the stand-in's runs store and report: a copy of the job's input at its
`output_key`, described the way the real handler describes its output
(worker/handler.py), with its poster frame when the copy is a video."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from clients.storage import ObjectNotFound, ObjectStorage
from worker.encode import CONTENT_TYPE
from worker.errors import InputUnreadable
from worker.media import probe
from worker.poster import write_poster


def store_output(
    storage: ObjectStorage, job_input: dict[str, Any], filler: bytes
) -> dict[str, Any]:
    """Store the output of a run whose input is `job_input` (`filler` when its input
    object is missing) and return the run's report."""
    output_key = job_input["output_key"]
    with tempfile.TemporaryDirectory(prefix="runpod-fake-") as folder:
        path = Path(folder) / "output.mp4"
        input_key = job_input.get("input_key")
        try:
            if not isinstance(input_key, str):
                raise ObjectNotFound(str(input_key))
            storage.get_file(input_key, path)
        except ObjectNotFound:
            path.write_bytes(filler)
        report: dict[str, Any] = {
            "output_key": output_key,
            "size_bytes": path.stat().st_size,
            "content_type": CONTENT_TYPE,
        }
        try:
            info = probe(path)
        except InputUnreadable:
            info = None  # a few bytes standing for a video: nothing more to say
        if info is not None:
            report |= {
                "duration_s": round(info.duration_s, 3),
                "width": info.width,
                "height": info.height,
                "frames": round(info.duration_s * info.fps),
                "frame_rate": round(float(info.fps), 3),
            }
            poster_key = job_input.get("poster_key")
            if isinstance(poster_key, str):
                write_poster(path, Path(folder) / "poster.jpg")
                storage.put_file(poster_key, Path(folder) / "poster.jpg")
                report["poster_key"] = poster_key
        storage.put_file(output_key, path)
    return report
