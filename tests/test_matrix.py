"""Every combination, rendered from the working tree and run through its own gates.

One combination is one test case: it renders the project, installs it from its own
declared dependencies into its own environment (uv, shared cache), then runs ruff,
ruff format --check, mypy --strict and pytest with the coverage gate, with the ORM the
migrations round trip and alembic check, and with Docker hadolint, the Compose schema and
the image rehearsal — the same gates as `kiln verify`. The log of a failing combination is
kept under .kiln/matrix-logs/.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from generator.options import Combination, load_options
from generator.project import tail, verify

from .conftest import REPO

LOGS = REPO / ".kiln" / "matrix-logs"
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


@pytest.mark.matrix
@pytest.mark.parametrize("combination", COMBINATIONS, ids=[c.key for c in COMBINATIONS])
def test_combination_passes_its_gates(combination: Combination, tmp_path: Path) -> None:
    require_services(combination)
    outcome = verify(combination, tmp_path, log_dir=LOGS)
    if outcome.ok:
        outcome.log.unlink(missing_ok=True)
        return
    pytest.fail(
        f"{combination.key} failed at {outcome.failed_gate}; full log: {outcome.log}\n"
        f"{tail(outcome.log, 60)}",
        pytrace=False,
    )
