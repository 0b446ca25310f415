"""Every combination, rendered from the working tree and run through its own gates.

One combination is one test case: it renders the project, installs it from its own
declared dependencies into its own environment (uv, shared cache), then runs ruff,
ruff format --check, mypy --strict (from a copy of the largest mypy cache an earlier
combination of the run left; mypy checks again whatever differs) and pytest with the
coverage gate, with the ORM the migrations round trip and alembic check, and with Docker
hadolint, the Compose schema and the image rehearsal — the same gates as `kiln verify`.
The log of a failing combination is kept under .kiln/matrix-logs/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from generator.options import Combination, load_options
from generator.project import Gate, WarmCaches, check, install_gate, render, tail, verify

from .conftest import REPO, run_directory

LOGS = REPO / ".kiln" / "matrix-logs"
RUFF = str(Path(sys.executable).with_name("ruff"))
COMBINATIONS = load_options(REPO / "copier.yml").combinations()


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_services(combination: Combination) -> None:
    """Skip a combination whose server is absent, with one line; fail instead under CI.

    The image rehearsal of a websockets combination fans out through the real Redis."""
    reason = None
    if combination.data.get("database") == "postgresql" and not _answers(5432):
        reason = "no PostgreSQL answers on 127.0.0.1:5432 (start it, or see .ci/run)"
    elif (
        combination.data.get("use_websockets")
        and combination.data.get("use_docker")
        and not _answers(6379)
    ):
        reason = "no Redis answers on 127.0.0.1:6379 (start it, or see .ci/run)"
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
    pytest.skip(reason)


#: Names at the other end from the matrix's: a long project name (and so a long slug) with a
#: short package name. The matrix renders the longest package name with a short project name.
OTHER_NAMES = {
    "project_name": "Northern Region Customer Orders And Invoices Reconciliation Service",
    "package_name": "svc",
}


@pytest.mark.parametrize("combination", COMBINATIONS, ids=[c.key for c in COMBINATIONS])
def test_combination_is_lint_clean_with_other_name_lengths(
    combination: Combination, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    render(project, {**OTHER_NAMES, **combination.data}, isolated=True)

    for argv in (["check", "--quiet", "."], ["format", "--check", "--quiet", "."]):
        done = subprocess.run(  # noqa: S603 - the test environment's own ruff
            [RUFF, *argv], cwd=project, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"ruff {argv[0]}:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="session")
def warm_caches() -> WarmCaches:
    """The tool caches the run's combinations share, in one directory for every xdist worker."""
    return WarmCaches(run_directory() / "warm-caches")


@pytest.mark.matrix
@pytest.mark.parametrize("combination", COMBINATIONS, ids=[c.key for c in COMBINATIONS])
def test_combination_passes_its_gates(
    combination: Combination, tmp_path: Path, warm_caches: WarmCaches
) -> None:
    require_services(combination)
    outcome = verify(combination, tmp_path, log_dir=LOGS, warm=warm_caches)
    if outcome.ok:
        outcome.log.unlink(missing_ok=True)
        return
    pytest.fail(
        f"{combination.key} failed at {outcome.failed_gate}; full log: {outcome.log}\n"
        f"{tail(outcome.log, 60)}",
        pytrace=False,
    )


#: Every feature's tests at once, on each engine.
EVERY_FEATURE = [
    c
    for c in COMBINATIONS
    if all(c.data[t] for t in ("use_auth", "use_orm", "use_websockets"))
    and c.data["use_background_tasks"]
    and c.data["use_docker"]
]


@pytest.mark.matrix
@pytest.mark.parametrize("combination", EVERY_FEATURE, ids=[c.key for c in EVERY_FEATURE])
def test_the_generated_tests_run_in_parallel(combination: Combination, tmp_path: Path) -> None:
    """Two pytest-xdist workers, each with its own database, share the tests out between
    them in whatever order they are handed; the tests must not notice one another."""
    require_services(combination)
    project = tmp_path / combination.key
    render(project, {"project_name": "Kiln Parallel", **combination.data}, isolated=True)
    parallel = Gate(
        "pytest-parallel",
        (str(Path(".venv") / "bin" / "pytest"), "-p", "no:cacheprovider", "-n", "2"),
    )

    outcome = check(
        project,
        combination,
        LOGS / f"parallel-{combination.key}.log",
        checks=[install_gate(), parallel],
    )

    if not outcome.ok:
        pytest.fail(
            f"{combination.key}: the parallel run failed; full log: {outcome.log}\n"
            f"{tail(outcome.log, 60)}",
            pytrace=False,
        )
    assert "created: 2/2 workers" in outcome.log.read_text(encoding="utf-8")
    outcome.log.unlink()
