"""A generated project's Docker image, rehearsed without Docker.

No Docker engine runs where the combinations are verified, so the image is checked by
doing what its `Dockerfile` and `compose.yaml` say, on this machine: `uv lock` (the user's
step), the build stages' files and `uv sync` commands into a fresh environment, the files
of the runtime stage, the `migrate` service's command on a fresh database, then the runtime
stage's `CMD` with a production-like environment on a free loopback port, polled on
`/health/live` and `/health/ready`, probed with the image's own `HEALTHCHECK` and stopped.
An ENV or ARG that names a secret fails it too.
Every command comes from the files, so a wrong `CMD`, a missing `COPY` or a broken
`uv sync` fails the rehearsal. Run it as ``python -m generator.rehearsal PROJECT``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from uv import find_uv_bin

#: Where the websocket combinations' fan-out is rehearsed: the Redis the matrix uses.
REDIS_URL = "redis://127.0.0.1:6379/0"

#: How long the server may take to answer its health checks, and to stop.
START_SECONDS = 60.0
STOP_SECONDS = 20.0
#: How long one install or migration command may take.
COMMAND_SECONDS = 600.0

#: Shell tokens that end a command inside a RUN instruction.
_SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;"})
#: Names of settings that hold secrets.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL", re.I)
#: Variables of the image that the rehearsal sets itself (they name container paths/ports).
_REHEARSAL_OWNS = frozenset({"PATH", "HOST", "PORT"})


class RehearsalError(Exception):
    """A step of the rehearsal failed; the message says which and why."""


# --- reading the Dockerfile -------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), its arguments with the line
    continuations joined, and the line it starts on."""

    keyword: str
    arguments: str
    line: int

    def where(self) -> str:
        return f"Dockerfile line {self.line} ({self.keyword})"


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile (default escape character ``\\``); comments and
    the comment lines inside a continued instruction are left out, as Docker does."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not parts:
            start = number
        continued = line.endswith("\\")
        parts.append(line[:-1].strip() if continued else line)
        if continued:
            continue
        keyword, _, arguments = " ".join(part for part in parts if part).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        parts = []
    if parts:
        keyword, _, arguments = " ".join(parts).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    return instructions


def stages(instructions: Sequence[Instruction]) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([instruction])
        elif result:
            result[-1].append(instruction)
        elif instruction.keyword != "ARG":
            raise RehearsalError(f"{instruction.where()}: comes before the first FROM")
    if not result:
        raise RehearsalError("the Dockerfile has no FROM")
    return result


def exec_form(instruction: Instruction, arguments: str | None = None) -> tuple[str, ...]:
    """The JSON array of an exec-form instruction; anything else is refused, because the
    shell form runs under ``/bin/sh`` as PID 1 and does not pass signals on."""
    text = instruction.arguments if arguments is None else arguments
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item for item in value)
    ):
        raise RehearsalError(
            f"{instruction.where()}: expected the exec form, a JSON array of strings "
            f'such as ["python", "-m", "app"], not {text!r}'
        )
    return tuple(value)


def command(final_stage: Sequence[Instruction]) -> tuple[str, ...]:
    """What the container runs: the runtime stage's ENTRYPOINT, if any, then its last CMD."""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    for instruction in final_stage:
        if instruction.keyword == "ENTRYPOINT":
            entrypoint = exec_form(instruction)
        elif instruction.keyword == "CMD":
            cmd = exec_form(instruction)
    if not entrypoint and not cmd:
        raise RehearsalError("the runtime stage (the last FROM) has no CMD")
    return entrypoint + cmd


def healthcheck(final_stage: Sequence[Instruction]) -> tuple[str, ...] | None:
    """The runtime stage's HEALTHCHECK command (exec form), or None without one."""
    found: tuple[str, ...] | None = None
    for instruction in final_stage:
        if instruction.keyword != "HEALTHCHECK":
            continue
        options = instruction.arguments
        while options.startswith("--"):
            _, _, options = options.partition(" ")
            options = options.lstrip()
        keyword, _, rest = options.partition(" ")
        if keyword.upper() == "NONE":
            found = None
        elif keyword.upper() == "CMD":
            found = exec_form(instruction, rest.strip())
        else:
            raise RehearsalError(f"{instruction.where()}: expected CMD or NONE after the options")
    return found


def environment(stage: Sequence[Instruction], base: Mapping[str, str]) -> dict[str, str]:
    """The variables a stage's ENV instructions set (``$NAME`` and ``${NAME}`` expanded from
    earlier ones and from ``base``)."""
    values: dict[str, str] = {}

    def expand(value: str) -> str:
        def lookup(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            return values.get(name, base.get(name, ""))

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lookup, value)

    for instruction in stage:
        if instruction.keyword != "ENV":
            continue
        words = shlex.split(instruction.arguments)
        if words and "=" not in words[0]:  # the legacy form: ENV NAME value with spaces
            values[words[0]] = expand(" ".join(words[1:]))
            continue
        for word in words:
            name, separator, value = word.partition("=")
            if not separator:
                raise RehearsalError(f"{instruction.where()}: {word!r} is not NAME=value")
            values[name] = expand(value)
    return values


def check_no_secrets(instructions: Sequence[Instruction]) -> None:
    """Refuse an ENV or ARG that names a secret: its value would stay in the image's layers
    (or its history) for anyone who pulls it. Secrets are given at run time."""
    for instruction in instructions:
        if instruction.keyword not in ("ENV", "ARG"):
            continue
        for word in shlex.split(instruction.arguments):
            name = word.partition("=")[0]
            if _SECRET_NAME.search(name):
                raise RehearsalError(
                    f"{instruction.where()}: {name} would put a secret into the image's layers;"
                    " give it to the container at run time instead"
                )
            if instruction.keyword == "ENV" and "=" not in word:
                break  # the legacy form: the rest is the value


def uv_sync_commands(instruction: Instruction) -> list[tuple[str, ...]]:
    """The ``uv sync ...`` commands inside a RUN instruction's shell script."""
    lexer = shlex.shlex(instruction.arguments, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    while tokens and tokens[0].startswith("--"):  # RUN's own options: --mount=..., --network
        tokens.pop(0)
    found: list[tuple[str, ...]] = []
    for index, token in enumerate(tokens):
        if Path(token).name == "uv" and tokens[index + 1 : index + 2] == ["sync"]:
            words: list[str] = []
            for word in tokens[index + 1 :]:
                if word in _SHELL_OPERATORS or set(word) <= set("();<>|&"):
                    break
                words.append(word)
            found.append(("uv", *words))
    return found


@dataclass(frozen=True)
class Copy:
    """A COPY of files from the build context (``--from`` copies come from a stage)."""

    sources: tuple[str, ...]
    destination: str
    from_stage: str | None


def parse_copy(instruction: Instruction) -> Copy:
    words = shlex.split(instruction.arguments)
    from_stage = None
    while words and words[0].startswith("--"):
        option = words.pop(0)
        if option.startswith("--from="):
            from_stage = option.partition("=")[2]
    if instruction.arguments.lstrip().startswith("["):
        words = list(exec_form(instruction))
    if len(words) < 2:
        raise RehearsalError(f"{instruction.where()}: needs a source and a destination")
    return Copy(tuple(words[:-1]), words[-1], from_stage)


def copy_from_context(copy: Copy, context: Path, workdir: Path) -> None:
    """Do a COPY from ``context`` into ``workdir`` the way Docker does: a directory's
    contents go into the destination, files keep their names under a destination that
    ends with ``/`` (or is ``.``), and a wildcard may match nothing."""
    destination = workdir / copy.destination
    into_directory = copy.destination.endswith(("/", ".")) or len(copy.sources) > 1
    for source in copy.sources:
        matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else []
        if not matches:
            if any(c in source for c in "*?["):
                continue
            matches = [context / source]
        for match in matches:
            if not match.exists():
                raise RehearsalError(f"COPY {source}: no such file in the project")
            if match.is_dir():
                shutil.copytree(match, destination, dirs_exist_ok=True)
            elif into_directory:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, destination / match.name)
            else:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, destination)


# --- reading compose.yaml ---------------------------------------------------------------


def compose_services(project: Path) -> dict[str, Any]:
    """The services of the project's compose.yaml (YAML merge keys resolved)."""
    document = yaml.safe_load((project / "compose.yaml").read_text(encoding="utf-8"))
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        raise RehearsalError("compose.yaml has no services")
    return services


def service_command(services: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """The ``command`` of a compose service, as argv (a string is split like Compose does)."""
    service = services.get(name)
    value = service.get("command") if isinstance(service, dict) else None
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list) and value and all(isinstance(word, str) for word in value):
        return tuple(value)
    raise RehearsalError(f"compose.yaml: the {name} service has no command")


# --- running it -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _say(text: str) -> None:
    print(text, flush=True)


def _resolve(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    found = shutil.which(argv[0], path=env.get("PATH"))
    if found is None:
        raise RehearsalError(f"{argv[0]}: not found in the image's environment")
    return [found, *argv[1:]]


def run_step(step: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
    """Run one command of a step, its output going to ours; RehearsalError if it fails."""
    _say(f"\n$ {shlex.join(argv)}    # {step}, in {cwd.name}/")
    try:
        result = subprocess.run(  # noqa: S603 - commands read from the project's own files
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            timeout=COMMAND_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RehearsalError(f"{step}: did not finish within {COMMAND_SECONDS:.0f} s") from None
    if result.returncode != 0:
        raise RehearsalError(f"{step}: {shlex.join(argv)} exited with {result.returncode}")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


@contextmanager
def server_process(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], output: IO[str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Start the image's command in its own process group; stop the whole group at the end,
    gracefully first (SIGTERM, as `docker stop` does)."""
    process = subprocess.Popen(  # noqa: S603 - the Dockerfile's CMD
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with suppress(ProcessLookupError):  # workers the server left behind
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    status = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RehearsalError(
                f"the server exited with {process.returncode} before {url} answered"
            )
        status = _get(url)
        if status == 200:
            _say(f"GET {url}: 200")
            return
        time.sleep(0.25)
    raise RehearsalError(
        f"{url} did not answer 200 within {START_SECONDS:.0f} s (last status: {status or 'none'})"
    )


def _probe(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
    try:
        return subprocess.run(  # noqa: S603 - the Dockerfile's HEALTHCHECK
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode
    except subprocess.TimeoutExpired:
        return -1


def rehearse(project: Path, *, database_url: str | None = None) -> None:
    """Rehearse the project's image; raise RehearsalError at the first step that fails.

    ``database_url`` is the fresh database for the migrations and the server (required with
    PostgreSQL); without it a SQLite project gets a new file of its own.
    """
    dockerfile = parse_dockerfile((project / "Dockerfile").read_text(encoding="utf-8"))
    check_no_secrets(dockerfile)
    *build_stages, final_stage = stages(dockerfile)
    services = compose_services(project)
    uv = find_uv_bin()
    with tempfile.TemporaryDirectory(prefix="kiln-image-") as scratch:
        root = Path(scratch)
        venv, build_dir, app_dir, data = (root / n for n in ("venv", "build", "app", "data"))
        for directory in (build_dir, app_dir, data / "uploads"):
            directory.mkdir(parents=True)
        base = dict(os.environ)
        base.pop("VIRTUAL_ENV", None)

        run_step("lock", (uv, "lock"), project, base)

        for stage in build_stages:
            stage_env = {**base, **environment(stage, base)}
            stage_env.update(UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON=sys.executable)
            for instruction in stage:
                if instruction.keyword == "COPY":
                    copy = parse_copy(instruction)
                    if copy.from_stage is None:
                        copy_from_context(copy, project, build_dir)
                elif instruction.keyword == "RUN":
                    for sync in uv_sync_commands(instruction):
                        run_step(
                            f"install ({instruction.where()})",
                            (uv, *sync[1:]),
                            build_dir,
                            stage_env,
                        )
        if not (venv / "bin" / "python").exists():
            raise RehearsalError("no build stage installs the environment with `uv sync`")

        for instruction in final_stage:
            if instruction.keyword == "COPY":
                copy = parse_copy(instruction)
                if copy.from_stage is None:
                    copy_from_context(copy, project, app_dir)

        image_env = {
            key: value
            for key, value in environment(final_stage, base).items()
            if key not in _REHEARSAL_OWNS
        }
        port = free_port()
        env = {
            **base,
            **image_env,
            "PATH": f"{venv / 'bin'}{os.pathsep}{base.get('PATH', '')}",
            "ENVIRONMENT": "production",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WORKERS": "2",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "UPLOAD_DIR": str(data / "uploads"),
        }
        if database_url is not None:
            env["DATABASE_URL"] = database_url
        elif (project / "alembic.ini").exists():
            env["DATABASE_URL"] = f"sqlite+aiosqlite:///{data / 'rehearsal.db'}"
        if "redis" in services:
            env["BROADCAST_URL"] = REDIS_URL

        if (project / "alembic.ini").exists():
            if "migrate" not in services:
                raise RehearsalError("compose.yaml has no migrate service to run the migrations")
            migrate = _resolve(service_command(services, "migrate"), env)
            run_step("migrate (compose service migrate)", migrate, app_dir, env)

        argv = _resolve(command(final_stage), env)
        probe = healthcheck(final_stage)
        _say(f"\n$ {shlex.join(argv)}    # the image's CMD, on 127.0.0.1:{port}")
        with (root / "server.log").open("w+", encoding="utf-8") as output:
            try:
                with server_process(argv, app_dir, env, output) as process:
                    deadline = time.monotonic() + START_SECONDS
                    for path in ("/health/live", "/health/ready"):
                        wait_for(f"http://127.0.0.1:{port}{path}", process, deadline)
                    if probe is not None:
                        status = _probe(_resolve(probe, env), app_dir, env)
                        if status != 0:
                            raise RehearsalError(
                                f"the HEALTHCHECK failed ({status}) while the server was up"
                            )
                        _say("HEALTHCHECK: healthy")
                if process.returncode not in (0, -signal.SIGTERM):
                    raise RehearsalError(f"the server exited with {process.returncode} on SIGTERM")
                if probe is not None:
                    if _probe(_resolve(probe, env), app_dir, env) == 0:
                        raise RehearsalError("the HEALTHCHECK passed with the server stopped")
                    _say("HEALTHCHECK after stop: unhealthy, as it should be")
            finally:
                output.seek(0)
                _say(f"\n--- server output ---\n{output.read()}--- end of server output ---")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m generator.rehearsal PROJECT [--database-url URL]``: exit 0 or 1, with
    every step and its output on stdout and the failure in one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m generator.rehearsal")
    parser.add_argument("project", type=Path)
    parser.add_argument("--database-url", help="a fresh database for the migrations and the server")
    args = parser.parse_args(argv)
    try:
        rehearse(args.project.resolve(), database_url=args.database_url)
    except (RehearsalError, OSError) as exc:
        print(f"\nrehearsal failed: {exc}", file=sys.stderr, flush=True)
        return 1
    _say("\nrehearsal passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
