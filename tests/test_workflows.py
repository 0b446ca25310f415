"""GitHub workflows, ours and the generated project's, against the workflow schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generator.project import render

from .conftest import REPO


def check_workflow(path: Path) -> subprocess.CompletedProcess[str]:
    checker = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(  # noqa: S603 - fixed command on our own files
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_our_workflow_is_valid() -> None:
    result = check_workflow(REPO / ".github" / "workflows" / "ci.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("python_version", ["3.11", "3.13"])
def test_generated_workflow_is_valid(tmp_path: Path, python_version: str) -> None:
    project = tmp_path / "svc"
    render(project, {"project_name": "Svc", "python_version": python_version}, isolated=True)
    workflow = project / ".github" / "workflows" / "ci.yml"
    assert f"uv sync --python {python_version}" in workflow.read_text(encoding="utf-8")
    result = check_workflow(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_workflow_with_redis_is_valid(tmp_path: Path) -> None:
    project = tmp_path / "svc"
    render(project, {"project_name": "Svc", "use_websockets": True}, isolated=True)
    workflow = project / ".github" / "workflows" / "ci.yml"
    assert "image: redis:" in workflow.read_text(encoding="utf-8")
    result = check_workflow(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text("on: push\njobs:\n  test:\n    steps: []\n", encoding="utf-8")
    assert check_workflow(broken).returncode != 0
