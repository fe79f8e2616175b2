"""Frames per second of the export worker, beside `ffmpeg` doing the same work.

    python bench/worker_fps.py [--seconds 10] [--repeat 2]

Generates a 1280x720 25 fps clip with audio (gql.demo.media), runs the real
handler (`worker.handler.run_export`, local storage) for each export kind, and
runs the equivalent `ffmpeg` command on the same clip in the same process run:

- framing:  crop 640x360 panning from the top-left to the bottom-right, scaled
            to 1280x720 (crop + scale);
- overlay:  DARK_OVERLAY with a moving ellipse (ffmpeg: eq brightness and
            saturation over the whole frame, the same per-pixel work);
- annotate: two clips with captions (ffmpeg: trim + concat + drawbox/drawtext).

Both encode H.264 (libx264 veryfast, crf 20, yuv420p) and AAC 128k. Each
figure is the best of `--repeat` runs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av

from clients.storage import LocalStorage
from gql.demo.media import make_video
from worker.encode import X264_CRF, X264_PRESET
from worker.handler import run_export
from worker.progress import ProgressReporter

WIDTH, HEIGHT, FPS = 1280, 720, 25
CLIPS = [(1.0, 5.0), (6.0, 9.5)]
FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
]


def jobs(seconds: float) -> dict[str, dict[str, Any]]:
    half_w, half_h = WIDTH // 2, HEIGHT // 2
    return {
        "framing": {
            "cropKeyframes": [
                {"time": 0, "x": 0, "y": 0, "width": half_w, "height": half_h},
                {"time": seconds, "x": half_w, "y": half_h, "width": half_w, "height": half_h},
            ],
            "outputWidth": WIDTH,
            "outputHeight": HEIGHT,
        },
        "overlay": {
            "effectType": "DARK_OVERLAY",
            "highlightRegions": [
                {
                    "startTime": 0,
                    "endTime": seconds,
                    "keyframes": [
                        {"time": 0, "x": 300, "y": 360, "radiusX": 160, "radiusY": 120},
                        {"time": seconds, "x": 980, "y": 360, "radiusX": 160, "radiusY": 120},
                    ],
                }
            ],
        },
        "annotate": {
            "clips": [
                {
                    "startTime": start,
                    "endTime": end,
                    "name": f"Clip {index + 1}: through ball",
                    "notes": "Switch of play to the weak side",
                    "rating": 4,
                }
                for index, (start, end) in enumerate(CLIPS)
            ]
        },
        # Zooming as well as panning: no single ffmpeg crop does this (its size is fixed).
        "framing_zoom": {
            "cropKeyframes": [
                {"time": 0, "x": 0, "y": 0, "width": half_w, "height": half_h},
                {"time": seconds, "x": half_w, "y": half_h, "width": 320, "height": 180},
            ],
            "outputWidth": WIDTH,
            "outputHeight": HEIGHT,
        },
    }


def ffmpeg_commands(
    ffmpeg: str, source: Path, output: Path, seconds: float
) -> dict[str, list[str]]:
    encode = [
        *("-c:v", "libx264", "-preset", X264_PRESET, "-crf", X264_CRF, "-pix_fmt", "yuv420p"),
        *("-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"),
    ]
    head = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    half_w, half_h = WIDTH // 2, HEIGHT // 2
    pan = (
        f"crop={half_w}:{half_h}:x='{half_w}*min(t/{seconds},1)':y='{half_h}*min(t/{seconds},1)',"
        f"scale={WIDTH}:{HEIGHT}:flags=bicubic"
    )
    return {
        "framing": [*head, "-vf", pan, *encode, str(output)],
        "overlay": [*head, "-vf", "eq=brightness=-0.3:saturation=0.5", *encode, str(output)],
        "annotate": [
            *(*head, "-filter_complex", _annotate_graph(), "-map", "[v]", "-map", "[a]"),
            *(*encode, str(output)),
        ],
    }


def _annotate_graph() -> str:
    font = next((f for f in FONT_CANDIDATES if Path(f).exists()), None)
    font_option = f"fontfile={font}:" if font else ""
    band = HEIGHT // 5
    parts, labels = [], []
    for index, (start, end) in enumerate(CLIPS):
        text = (
            f"drawbox=x=0:y=ih-{band}:w=iw:h={band}:color=black@0.7:t=fill,"
            f"drawtext={font_option}text='Clip {index + 1}\\: through ball':"
            f"x=20:y=h-{band - 20}:fontsize=40:fontcolor=white,"
            f"drawtext={font_option}text='Switch of play to the weak side':"
            f"x=20:y=h-{band - 80}:fontsize=28:fontcolor=white"
        )
        parts.append(f"[0:v]trim=start={start}:end={end},setpts=PTS-STARTPTS,{text}[v{index}]")
        parts.append(f"[0:a]atrim=start={start}:end={end},asetpts=PTS-STARTPTS[a{index}]")
        labels.append(f"[v{index}][a{index}]")
    parts.append(f"{''.join(labels)}concat=n={len(CLIPS)}:v=1:a=1[v][a]")
    return ";".join(parts)


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.demux(container.streams.video[0]) if _.size)


def best_of(repeat: int, run: Any) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    with tempfile.TemporaryDirectory(prefix="worker-fps-") as scratch:
        root = Path(scratch)
        source = make_video(
            root / "clip.mp4", width=WIDTH, height=HEIGHT, seconds=args.seconds, fps=FPS
        )
        storage = LocalStorage(root / "storage")
        storage.put_file("clip.mp4", source)
        ours: dict[str, float] = {}
        baseline: dict[str, float] = {}
        commands = (
            ffmpeg_commands(ffmpeg, source, root / "ffmpeg.mp4", args.seconds) if ffmpeg else {}
        )
        for kind, params in jobs(args.seconds).items():
            job_input = {
                "job_id": kind,
                "user_id": "bench",
                "type": kind.split("_")[0],
                "input_key": "clip.mp4",
                "output_key": f"out/{kind}.mp4",
                "params": params,
            }
            results: dict[str, Any] = {}

            def export(
                job_input: dict[str, Any] = job_input, results: dict[str, Any] = results
            ) -> None:
                job = {"id": "bench", "input": job_input}
                reporter = ProgressReporter(job, lambda _job, _payload: None)
                results.update(run_export(job, storage=storage, reporter=reporter))

            seconds = best_of(args.repeat, export)
            ours[kind] = round(results["frames"] / seconds, 1)
            if kind in commands:
                command = commands[kind]
                seconds = best_of(args.repeat, lambda c=command: subprocess.run(c, check=True))
                baseline[kind] = round(frame_count(root / "ffmpeg.mp4") / seconds, 1)
    report: dict[str, Any] = {
        "clip": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "seconds": args.seconds},
        "cpus": os.cpu_count(),
        "encoder": {"video": f"libx264 {X264_PRESET} crf {X264_CRF}", "audio": "aac 128k"},
        "worker": {"fps": ours, "pyav": av.__version__, "ffmpeg_in_pyav": _pyav_ffmpeg()},
    }
    if ffmpeg:
        report["baseline"] = {"tool": f"{_ffmpeg_version(ffmpeg)} ({ffmpeg})", "fps": baseline}
        report["ratio"] = {k: round(ours[k] / v, 2) for k, v in baseline.items()}
    else:
        report["baseline"] = None
        report["note"] = "no ffmpeg on PATH: baseline skipped"
    print(json.dumps(report, indent=2))


def _ffmpeg_version(ffmpeg: str) -> str:
    first = subprocess.run([ffmpeg, "-version"], check=False, capture_output=True, text=True).stdout
    return " ".join(first.split()[:3]) if first else "ffmpeg"


def _pyav_ffmpeg() -> str:
    return str(getattr(av, "ffmpeg_version_info", "unknown"))


if __name__ == "__main__":
    main()
