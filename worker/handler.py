"""The RunPod handler: download the input, render the export, upload the output.

The output is rendered to a temporary file and uploaded only once complete, so
a failed or killed export never leaves an object at `output_key`. Its poster
frame goes up just before it, so a stored video always has its poster. A raised
`ExportError` carries the one-line message that becomes the job's error.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from clients.storage import ObjectNotFound, ObjectStorage, open_storage
from worker.encode import CONTENT_TYPE, Rendered
from worker.errors import ExportError, InputNotFound, InvalidParams
from worker.exports.annotate import render_annotate
from worker.exports.framing import render_framing
from worker.exports.overlay import render_overlay
from worker.media import VideoInfo, probe
from worker.params import (
    AnnotateParams,
    ExportParams,
    FramingParams,
    OverlayParams,
    check_against_video,
    parse_request,
)
from worker.poster import write_poster
from worker.progress import ProgressReporter
from worker.render import Progress
from worker.runtime import current_runtime

logger = logging.getLogger(__name__)

# Share of the progress bar each phase takes.
RENDER_START = 3
RENDER_END = 95


def handler(job: dict[str, Any]) -> dict[str, Any]:
    """RunPod entry point: storage and progress come from this process's runtime."""
    runtime = current_runtime()
    storage = open_storage(runtime.storage_config)
    return run_export(job, storage=storage, reporter=ProgressReporter(job, runtime.progress_update))


def run_export(
    job: Mapping[str, Any], *, storage: ObjectStorage, reporter: ProgressReporter
) -> dict[str, Any]:
    if not isinstance(job, Mapping):
        raise InvalidParams("The job must be an object")
    request = parse_request(job.get("input"))
    log = {"job": request.job_id, "kind": request.kind.value, "runpod_job": job.get("id")}
    started = time.monotonic()
    logger.info("export started", extra={"action": "export_started", **log})
    with tempfile.TemporaryDirectory(prefix="export-") as scratch:
        source = Path(scratch) / f"input{PurePosixPath(request.input_key).suffix or '.mp4'}"
        output = Path(scratch) / "output.mp4"
        reporter.update(0, "Downloading input")
        try:
            storage.get_file(request.input_key, source)
        except ObjectNotFound:
            raise InputNotFound(f"Input video {request.input_key!r} not found") from None
        info = probe(source)
        check_against_video(
            request.params,
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            fps=float(info.fps),
        )
        reporter.update(RENDER_START, "Rendering")

        def on_progress(fraction: float) -> None:
            reporter.update(RENDER_START + (RENDER_END - RENDER_START) * fraction, "Rendering")

        rendered = _render(request.params, source, output, info, on_progress)
        if rendered.frames == 0:
            raise ExportError("The export produced no frames")
        reporter.update(RENDER_END, "Uploading output")
        if request.poster_key is not None:
            poster = Path(scratch) / "poster.jpg"
            write_poster(output, poster)
            storage.put_file(request.poster_key, poster)
        storage.put_file(request.output_key, output)
        size_bytes = output.stat().st_size
    reporter.finish("Export complete")
    logger.info(
        "export finished",
        extra={
            "action": "export_finished",
            **log,
            "frames": rendered.frames,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return {
        "output_key": request.output_key,
        "input_duration_s": info.duration_s,
        "duration_s": rendered.duration_s,
        "width": rendered.width,
        "height": rendered.height,
        "frames": rendered.frames,
        "frame_rate": rendered.frame_rate,
        "size_bytes": size_bytes,
        "content_type": CONTENT_TYPE,
        "poster_key": request.poster_key,
    }


def _render(
    params: ExportParams, source: Path, output: Path, info: VideoInfo, on_progress: Progress
) -> Rendered:
    if isinstance(params, FramingParams):
        return render_framing(params, source, output, info, on_progress)
    if isinstance(params, OverlayParams):
        return render_overlay(params, source, output, info, on_progress)
    assert isinstance(params, AnnotateParams)
    return render_annotate(params, source, output, info, on_progress)
