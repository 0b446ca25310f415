"""The `kiln` commands, through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from generator.cli import app
from generator.options import Options, flag_name

runner = CliRunner()


def kiln(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_options_json_is_copier_yml(options: Options) -> None:
    result = kiln("options", "--format", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [row["name"] for row in listed] == [q.name for q in options.asked]
    database = next(row for row in listed if row["name"] == "database")
    assert database["choices"] == ["sqlite", "postgresql"]
    assert database["asked_when"] == "use_orm"


def test_options_table_names_every_question(options: Options) -> None:
    result = kiln("options")
    assert result.exit_code == 0
    for question in options.asked:
        assert question.name[:10] in result.stdout


def test_matrix_json_lists_48(options: Options) -> None:
    result = kiln("matrix", "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert len(rows) == 48
    assert [row["key"] for row in rows] == [c.key for c in options.combinations()]


def test_matrix_github_is_an_include_list(options: Options) -> None:
    result = kiln("matrix", "--format", "github")
    assert result.exit_code == 0
    matrix = json.loads(result.stdout)
    assert set(matrix) == {"include"}
    assert len(matrix["include"]) == 48
    first = matrix["include"][0]
    assert first["key"] == "minimal"
    assert "use_orm=false" in first["combo"]


def test_matrix_table() -> None:
    result = kiln("matrix")
    assert result.exit_code == 0
    assert "48 combinations" in result.stdout


def test_new_has_a_flag_per_toggle_and_variant(options: Options) -> None:
    result = kiln("new", "--help")
    assert result.exit_code == 0
    for toggle in options.toggles:
        assert f"--{flag_name(toggle)} / --no-{flag_name(toggle)}" in result.stdout
    for variant in options.variants:
        assert f"--{flag_name(variant)}" in result.stdout


def recorded(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_new_with_defaults_names_the_project_after_dest(tmp_path: Path) -> None:
    dest = tmp_path / "inventory"
    result = kiln("new", str(dest), "--defaults")
    assert result.exit_code == 0, result.output
    answers = recorded(dest)
    assert answers["project_name"] == "inventory"
    assert answers["package_name"] == "inventory"
    assert (dest / "src" / "inventory").is_dir()
    assert "uv sync" in result.stdout
    assert f"cd {dest}" in result.stdout


def test_new_flags_and_data_reach_the_answers(tmp_path: Path) -> None:
    dest = tmp_path / "svc"
    result = kiln(
        "new",
        str(dest),
        "--defaults",
        "--name",
        "Ledger",
        "--no-auth",
        "--database",
        "postgresql",
        "--websockets",
        "--data",
        "python_version=3.13",
        "-d",
        "author_email=team@example.org",
    )
    assert result.exit_code == 0, result.output
    answers = recorded(dest)
    assert answers["project_name"] == "Ledger"
    assert answers["use_auth"] is False
    assert answers["use_orm"] is True
    assert answers["database"] == "postgresql"
    assert answers["use_websockets"] is True
    assert answers["python_version"] == "3.13"
    assert answers["author_email"] == "team@example.org"


def test_new_into_an_existing_empty_directory(tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    result = kiln("new", str(dest), "--defaults")
    assert result.exit_code == 0, result.output
    assert (dest / "pyproject.toml").is_file()


def one_error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = str(lines[0])
    assert line.startswith("kiln: error: ")
    return line


BAD_NEW = [
    (["--bogus"], "No such option: --bogus"),
    (["--database", "mysql"], "mysql"),
    (["--no-orm", "--database", "postgresql"], "--database needs use_orm"),
    (["--orm", "--data", "use_orm=false"], "--orm contradicts --data use_orm=false"),
    (["--name", "A", "--data", "project_name=B"], "--name contradicts --data project_name"),
    (["--data", "use_orn=true"], "unknown option 'use_orn'"),
    (["--data", "use_orm"], "is not KEY=VALUE"),
    (["--data", "use_orm=perhaps"], "expected true or false"),
    (["--data", "project_slug=Bad Slug"], "question 'project_slug'"),
    (["--data", "project_slug=Bad Slug"], "(e.g. orders-service); nothing was written"),
    (["--name", "A" * 33], "aa; give it with --data package_name=VALUE; nothing was written"),
    (["--data", "package_name=typing"], "standard-library"),
    (["--data", "package_name=class"], "keyword"),
    (["--data", "author_email=nope"], "not an email address"),
    (["--name", "  "], "must not be empty"),
    (["--name", "Café Crème", "--data", "project_slug=café"], "question 'project_slug'"),
    (["--data", "python_version=2.7"], "not one of 3.11, 3.12, 3.13"),
    (["--data", "reserved_module_names=[]"], "computed by the template"),
]


@pytest.mark.parametrize(("args", "message"), BAD_NEW)
def test_new_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    dest = tmp_path / "svc"
    result = kiln("new", str(dest), "--defaults", *args)
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_new_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    result = kiln("new", str(tmp_path), "--defaults")
    assert result.exit_code == 2
    assert "is not empty" in one_error_line(result)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_new_refuses_a_file_as_destination(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    result = kiln("new", str(target / "svc"), "--defaults")
    assert result.exit_code == 2
    assert "not a directory" in one_error_line(result)
    result = kiln("new", str(target), "--defaults")
    assert "exists and is not a directory" in one_error_line(result)
    assert target.read_text(encoding="utf-8") == "x"


def test_new_without_a_terminal_needs_defaults(tmp_path: Path) -> None:
    result = kiln("new", str(tmp_path / "svc"))
    assert result.exit_code == 2
    assert "--defaults" in one_error_line(result)
    assert not (tmp_path / "svc").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to verify"),
        (["--all", "--combo", "minimal"], "--all and --combo contradict"),
        (["--combo", "no-such-combo"], "is not a combination key"),
        (["--combo", "use_orm=false", "--combo", "database=postgresql"], "database only applies"),
        (["--combo", "python_version=3.13"], "not a matrix option"),
        (["--jobs", "0", "--all"], "--jobs"),
    ],
)
def test_verify_refuses_bad_selections(args: list[str], message: str) -> None:
    result = kiln("verify", *args)
    assert result.exit_code == 2
    assert message in one_error_line(result)


def test_readme_options_table_covers_copier_yml(options: Options) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for question in options.asked:
        assert f"`{question.name}`" in readme, f"README does not document {question.name}"


def test_ci_runs_the_readme_test_command() -> None:
    repo = Path(__file__).resolve().parent.parent
    readme = (repo / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- test-command -->", 1)[1].split("```", 2)[1]
    command = block.removeprefix("bash").strip()
    assert command.endswith(".venv/bin/pytest")
    ci = (repo / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in ci
