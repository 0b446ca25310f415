"""The static security gates: each can fail, and the tools they need are checked up front."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generator.options import Options
from generator.project import missing_tools, render, security_gates
from generator.secret_scan import findings

#: An AWS access key id in the shape detect-secrets knows (AWS's documented example value).
FAKE_AWS_KEY = "AKIA" + "IOSFODNN7EXAMPLE"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("security") / "svc"
    render(dest, {"project_name": "Svc", "use_websockets": True}, isolated=True)
    return dest


def run_gate(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    gate = next(g for g in security_gates() if g.name == name)
    return subprocess.run(  # noqa: S603 - our own gate
        gate.argv, cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "data",
    [
        {"use_websockets": True},
        {"database": "postgresql", "use_websockets": True},
        {"use_orm": False, "use_websockets": True},
    ],
    ids=["sqlite", "postgresql", "no-orm"],
)
def test_a_rendered_project_has_no_secret(data: dict[str, object], tmp_path: Path) -> None:
    render(tmp_path / "svc", {"project_name": "Svc", **data}, isolated=True)

    assert findings(tmp_path / "svc") == []


def test_a_secret_in_a_project_file_is_found_but_tests_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "settings.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n', encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n', encoding="utf-8")

    assert findings(tmp_path) == ["src/settings.py:1: AWS Access Key"]
    result = run_gate("secrets", tmp_path)
    assert result.returncode == 1
    assert "1 secret(s) in 1 files" in result.stdout


def test_bandit_fails_on_medium_severity_code(rendered: Path, tmp_path: Path) -> None:
    assert run_gate("bandit", rendered).returncode == 0
    (tmp_path / "bad.py").write_text(
        "import pickle\n\n\ndef load(data: bytes) -> object:\n    return pickle.loads(data)\n",
        encoding="utf-8",
    )
    result = run_gate("bandit", tmp_path)
    assert result.returncode != 0
    assert "B301" in result.stdout


def test_zizmor_fails_on_an_unpinned_action(rendered: Path) -> None:
    assert run_gate("zizmor", rendered).returncode == 0, run_gate("zizmor", rendered).stdout
    workflow = rendered / ".github" / "workflows" / "ci.yml"
    text = workflow.read_text(encoding="utf-8")
    workflow.write_text(
        text.replace(
            "actions/checkout@8e8c483db84b4bee98b60c0593521ed34d9990e8", "actions/checkout@v6"
        ),
        encoding="utf-8",
    )
    try:
        result = run_gate("zizmor", rendered)
    finally:
        workflow.write_text(text, encoding="utf-8")
    assert result.returncode != 0
    assert "unpinned" in result.stdout + result.stderr


def test_missing_tools_are_named(
    options: Options, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert missing_tools(options.combinations()) == []
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))

    missing = missing_tools([options.combination({"use_docker": True})])

    assert missing == ["bandit", "check-jsonschema", "hadolint", "zizmor"]
