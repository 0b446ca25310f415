"""The Docker toggle: which files it renders, the linters that check them, and the
rehearsal of the image without Docker (`generator.rehearsal`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator.project import render
from generator.rehearsal import (
    Copy,
    RehearsalError,
    check_no_secrets,
    command,
    copy_from_context,
    environment,
    healthcheck,
    parse_dockerfile,
    rehearse,
    stages,
    uv_sync_commands,
)

from .test_workflows import check_workflow

DOCKER_FILES = {"Dockerfile", "compose.yaml", ".dockerignore"}
TOOLS = Path(sys.executable).parent

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.12-slim AS build
ENV UV_COMPILE_BYTECODE=1 \\
    UV_LINK_MODE=copy
# a comment between instructions
RUN --mount=type=cache,target=/root/.cache/uv \\
    if [ ! -f uv.lock ]; then echo "no lock" >&2; exit 1; fi; \\
    uv sync --frozen --no-dev --no-install-project && echo done
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.12-slim AS runtime
ENV PATH="/app/.venv/bin:$PATH" \\
    HOME_DIR=/app \\
    DATA=${HOME_DIR}/data
HEALTHCHECK --interval=30s --timeout=5s \\
    CMD ["python", "-c", "print('ok')"]
CMD ["python", "-m", "service", "serve"]
"""


def test_docker_files_come_with_the_toggle_only(tmp_path: Path) -> None:
    with_docker, without = tmp_path / "with", tmp_path / "without"
    render(with_docker, {"project_name": "Svc", "use_docker": True}, isolated=True)
    render(without, {"project_name": "Svc", "use_docker": False}, isolated=True)

    assert {path.name for path in with_docker.iterdir()} >= DOCKER_FILES
    rendered = {path.name for path in without.rglob("*")}
    assert not rendered & DOCKER_FILES
    assert "docker" not in (without / "README.md").read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("use_docker", [True, False])
def test_the_generated_ci_lints_and_builds_the_image(tmp_path: Path, use_docker: bool) -> None:
    project = tmp_path / "svc"
    render(project, {"project_name": "Svc", "use_docker": use_docker}, isolated=True)
    workflow = project / ".github" / "workflows" / "ci.yml"

    text = workflow.read_text(encoding="utf-8")

    assert ("hadolint Dockerfile" in text) is use_docker
    assert ("docker build" in text) is use_docker
    result = check_workflow(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_lock_file_is_not_ignored(tmp_path: Path) -> None:
    project = tmp_path / "svc"
    render(project, {"project_name": "Svc", "use_docker": True}, isolated=True)

    subprocess.run(["git", "init", "-q"], cwd=project, check=True)  # noqa: S607
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "uv.lock"],  # noqa: S607
        cwd=project,
        check=False,
    )
    assert ignored.returncode == 1, ".gitignore must not ignore uv.lock"
    rules = [
        line
        for line in (project / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*"  # everything stays out of the build context ...
    assert "!uv.lock" in rules  # ... but the lock file
    assert not [rule for rule in rules if rule.startswith("!.env")]


@pytest.mark.parametrize("python_version", ["3.11", "3.13"])
def test_the_image_follows_the_python_version(tmp_path: Path, python_version: str) -> None:
    project = tmp_path / "svc"
    render(project, {"project_name": "Svc", "python_version": python_version}, isolated=True)

    froms = [
        instruction.arguments
        for instruction in parse_dockerfile((project / "Dockerfile").read_text(encoding="utf-8"))
        if instruction.keyword == "FROM"
    ]

    assert froms[1:] == [
        f"python:{python_version}-slim AS build",
        f"python:{python_version}-slim AS runtime",
    ]


def test_hadolint_and_the_compose_schema_can_fail(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python\nCMD python -m service\n", encoding="utf-8")
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        "services:\n  app:\n    image: svc\n    depends_on:\n      db:\n        condition: up\n",
        encoding="utf-8",
    )

    lint = subprocess.run(  # noqa: S603 - our own test dependency
        [str(TOOLS / "hadolint"), str(dockerfile)], capture_output=True, text=True, check=False
    )
    schema = subprocess.run(  # noqa: S603 - our own test dependency
        [str(TOOLS / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert lint.returncode != 0
    assert "DL3006" in lint.stdout  # an untagged image
    assert schema.returncode != 0


def test_instructions_join_continuations_and_skip_comments() -> None:
    instructions = parse_dockerfile(DOCKERFILE)

    assert [i.keyword for i in instructions] == [
        "FROM", "FROM", "ENV", "RUN", "RUN", "FROM", "ENV", "HEALTHCHECK", "CMD",
    ]  # fmt: skip
    assert instructions[2].arguments == "UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy"
    assert instructions[3].line == 8


def test_the_command_healthcheck_and_environment_come_from_the_last_stage() -> None:
    *_, final = stages(parse_dockerfile(DOCKERFILE))

    assert command(final) == ("python", "-m", "service", "serve")
    assert healthcheck(final) == ("python", "-c", "print('ok')")
    assert environment(final, {"PATH": "/usr/bin"}) == {
        "PATH": "/app/.venv/bin:/usr/bin",
        "HOME_DIR": "/app",
        "DATA": "/app/data",
    }


def test_the_uv_sync_commands_are_read_out_of_the_shell() -> None:
    _, build, _ = stages(parse_dockerfile(DOCKERFILE))
    runs = [i for i in build if i.keyword == "RUN"]

    assert [uv_sync_commands(run) for run in runs] == [
        [("uv", "sync", "--frozen", "--no-dev", "--no-install-project")],
        [("uv", "sync", "--frozen", "--no-dev", "--no-editable")],
    ]


@pytest.mark.parametrize(
    "cmd",
    [
        "CMD python -m service serve",  # shell form: sh as PID 1 swallows SIGTERM
        'CMD ["python", "-m", service]',
        "CMD []",
    ],
)
def test_a_command_not_in_exec_form_is_refused(cmd: str) -> None:
    final = stages(parse_dockerfile(f"FROM python:3.12-slim\n{cmd}\n"))[-1]

    with pytest.raises(RehearsalError, match="exec form"):
        command(final)


def test_an_entrypoint_comes_before_the_command() -> None:
    final = stages(
        parse_dockerfile('FROM python:3.12-slim\nENTRYPOINT ["tini", "--"]\nCMD ["python"]\n')
    )[-1]

    assert command(final) == ("tini", "--", "python")


def test_a_stage_without_a_command_is_refused() -> None:
    with pytest.raises(RehearsalError, match="no CMD"):
        command(stages(parse_dockerfile("FROM python:3.12-slim\nRUN true\n"))[-1])


@pytest.mark.parametrize(
    "line",
    [
        "ENV SECRET_KEY=abc",
        "ENV LOG_LEVEL=INFO DATABASE_PASSWORD=x",
        "ARG GITHUB_TOKEN",
        "ENV API_KEY abc",
    ],
)
def test_a_secret_in_the_image_is_refused(line: str) -> None:
    with pytest.raises(RehearsalError, match="secret"):
        check_no_secrets(parse_dockerfile(f"FROM python:3.12-slim\n{line}\n"))


def test_settings_that_are_not_secrets_are_fine() -> None:
    check_no_secrets(parse_dockerfile(DOCKERFILE))
    check_no_secrets(parse_dockerfile("FROM python:3.12-slim\nENV MESSAGE the token of thanks\n"))


def test_copy_follows_dockers_rules(tmp_path: Path) -> None:
    context, workdir = tmp_path / "context", tmp_path / "workdir"
    (context / "src" / "pkg").mkdir(parents=True)
    (context / "src" / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (context / "pyproject.toml").write_text("", encoding="utf-8")

    copy_from_context(Copy(("pyproject.toml", "uv.lock*"), "./", None), context, workdir)
    copy_from_context(Copy(("src",), "./src", None), context, workdir)

    assert sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")) == [
        "pyproject.toml",
        "src",
        "src/pkg",
        "src/pkg/__init__.py",
    ]
    with pytest.raises(RehearsalError, match=r"COPY README\.md"):
        copy_from_context(Copy(("README.md",), "./", None), context, workdir)


# --- the rehearsal itself, on a rendered project (slow: installs it) ---------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rendered Docker project without the ORM (the quickest to install)."""
    project = tmp_path_factory.mktemp("rehearsal") / "svc"
    render(
        project,
        {"project_name": "Svc", "use_docker": True, "use_orm": False, "use_auth": False},
        isolated=True,
    )
    return project


def broken(project: Path, old: str, new: str) -> Path:
    dockerfile = project / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8")
    assert old in text
    dockerfile.write_text(text.replace(old, new), encoding="utf-8")
    return project


@pytest.fixture
def fresh(service: Path, tmp_path: Path) -> Path:
    """A copy of the rendered project, free to break."""
    project = tmp_path / "svc"
    shutil.copytree(service, project)
    return project


@pytest.mark.matrix
def test_the_rendered_image_rehearses_cleanly(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rehearse(fresh)

    out = capsys.readouterr().out
    assert "/health/live: 200" in out
    assert "/health/ready: 200" in out
    assert "HEALTHCHECK: healthy" in out
    assert (fresh / "uv.lock").exists()


@pytest.mark.matrix
def test_a_wrong_command_fails_the_rehearsal_with_the_servers_output(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken(fresh, '"-m", "svc", "serve"', '"-m", "svc.nothing", "serve"')

    with pytest.raises(RehearsalError, match="the server exited with 1"):
        rehearse(fresh)

    assert "No module named svc.nothing" in capsys.readouterr().out


@pytest.mark.matrix
def test_a_build_stage_that_misses_the_code_fails_the_rehearsal(
    fresh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken(fresh, "COPY src ./src\n", "")

    # hatchling builds an empty wheel without the sources; the image would not start
    with pytest.raises(RehearsalError, match="the server exited with 1"):
        rehearse(fresh)

    assert "No module named svc" in capsys.readouterr().out


@pytest.mark.matrix
def test_a_healthcheck_on_a_wrong_path_fails_the_rehearsal(fresh: Path) -> None:
    broken(fresh, "/health/live', timeout", "/health/alive', timeout")

    with pytest.raises(RehearsalError, match="HEALTHCHECK failed"):
        rehearse(fresh)
