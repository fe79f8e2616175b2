"""Entry point of the RunPod worker image: `python -m worker.runpod_main`.

Storage comes from the environment (STORAGE_DIR or the R2_* variables) and
progress goes out through `runpod.serverless.progress_update`.
"""

from __future__ import annotations


def main() -> None:
    import runpod

    from worker.handler import handler

    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    main()
