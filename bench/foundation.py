"""Measure Kiln's budgets and print the figures.

    python bench/foundation.py              render time and new-user time-to-green (and the
                                            same tests again with -n auto, on their own)
    python bench/foundation.py --matrix     ... and the full matrix wall time (minutes)

Figures, not tests: nothing here fails on a slow run. Budgets (2-core machine): one
in-process render within 0.5 s; `kiln new` -> installed -> generated tests green within
20 s with a warm uv cache; the full matrix, every combination through every gate, within
10 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generator.options import load_options
from generator.project import gate_environment, gates, render

REPO = Path(__file__).resolve().parent.parent


def render_seconds(runs: int) -> list[float]:
    """Wall seconds of one in-process render of the default combination, ``runs`` times."""
    timings = []
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        for i in range(runs):
            started = time.perf_counter()
            render(Path(tmp) / f"svc{i}", {"project_name": "Bench Service"}, isolated=True)
            timings.append(time.perf_counter() - started)
    return timings


#: The generated tests once more, over every core (the pytest gate with `-n auto`), right
#: after the sequential run: reported on its own, not in the total.
PARALLEL = "pytest -n auto"


def time_to_green() -> dict[str, float]:
    """`kiln new --defaults`, then the user's `uv sync` and `uv run pytest`, timed; then the
    same tests with `-n auto`, for comparison.

    Run once untimed first so the uv cache is warm, as the budget assumes.
    """
    kiln = Path(sys.executable).with_name("kiln")
    combination = load_options().combination({})
    steps: dict[str, float] = {}
    env = gate_environment(None)
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        for attempt in ("warm-up", "timed"):
            dest = Path(tmp) / attempt
            commands = [("kiln new", [str(kiln), "new", str(dest), "--defaults"], Path(tmp))]
            for gate in gates(combination):
                if gate.name in {"install", "pytest"}:
                    commands.append((gate.name, list(gate.argv), dest))
                if gate.name == "pytest":
                    commands.append((PARALLEL, [*gate.argv, "-n", "auto"], dest))
            for name, argv, cwd in commands:
                started = time.perf_counter()
                done = subprocess.run(  # noqa: S603 - our own commands
                    argv, cwd=cwd, env=env, capture_output=True, text=True, check=False
                )
                if done.returncode != 0:
                    sys.exit(f"{name} failed:\n{done.stdout}{done.stderr}")
                if attempt == "timed":
                    steps[name] = time.perf_counter() - started
    return steps


def matrix_minutes(jobs: int) -> float:
    """Wall minutes of `kiln verify --all`."""
    kiln = Path(sys.executable).with_name("kiln")
    started = time.perf_counter()
    subprocess.run([str(kiln), "verify", "--all", "--jobs", str(jobs)], check=True)  # noqa: S603
    return (time.perf_counter() - started) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=10, help="renders to time (default 10)")
    parser.add_argument("--matrix", action="store_true", help="also time `kiln verify --all`")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}")
    renders = render_seconds(args.renders)
    print(
        f"render (in-process, default answers): median {statistics.median(renders):.2f} s, "
        f"min {min(renders):.2f} s over {len(renders)} runs (budget 0.5 s)"
    )
    steps = time_to_green()
    parallel = steps.pop(PARALLEL)
    steps["total"] = sum(steps.values())
    detail = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in steps.items())
    print(f"new user, warm uv cache: {detail} (budget 20 s total)")
    print(f"the same tests with `{PARALLEL}`: {parallel:.1f} s")
    if args.matrix:
        minutes = matrix_minutes(args.jobs)
        print(f"full matrix, {args.jobs} jobs: {minutes:.1f} min wall (budget 10 min)")


if __name__ == "__main__":
    main()
