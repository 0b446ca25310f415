"""`kiln verify` end to end, on a fork of the template that breaks one combination."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from generator.cli import app

from .conftest import REPO


@pytest.fixture
def fork(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template whose docker combinations fail their lint gate."""
    root = tmp_path / "fork"
    root.mkdir()
    shutil.copy2(REPO / "copier.yml", root / "copier.yml")
    shutil.copytree(REPO / "template", root / "template")
    package = root / "template" / "src" / "{{package_name}}"
    (package / "{% if use_docker %}broken.py{% endif %}").write_text(
        '"""Unused import."""\n\nimport os\n', encoding="utf-8"
    )
    monkeypatch.setenv("KILN_TEMPLATE", str(root))
    return root


@pytest.mark.matrix
def test_verify_reports_each_combination_and_keeps_failed_logs(fork: Path, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    result = CliRunner().invoke(
        app,
        [
            "verify",
            "--combo",
            "minimal",
            "--combo",
            "docker",
            "--jobs",
            "2",
            "--log-dir",
            str(logs),
        ],
    )
    assert result.exit_code == 1, result.output
    assert "1 passed, 1 failed" in result.stdout
    assert "failed at ruff" in result.stdout
    kept = sorted(p.name for p in logs.iterdir())
    assert kept == ["docker.log"]
    log = (logs / "docker.log").read_text(encoding="utf-8")
    assert "F401" in log
    assert "broken.py" in log
