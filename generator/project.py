"""Rendering a project from the template and running its own gates.

`kiln new`, `kiln verify` and the template's matrix tests all go through here, so a
combination is rendered, installed and checked the same way everywhere.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import copier
import jinja2
import yaml
from uv import find_uv_bin

from generator.options import Combination, template_root

#: The longest package name copier.yml's validator allows (the tests hold the two equal).
MAX_PACKAGE_NAME = 32
#: The package name every checked combination is rendered with: the longest allowed, so that
#: no generated line outgrows the project's own linters with a long name.
CHECK_PACKAGE = "kiln_check_with_the_longest_name"

#: How long one gate may run before it counts as failed, and then how long it has to stop.
GATE_TIMEOUT_SECONDS = 900
GATE_STOP_SECONDS = 30

#: The PostgreSQL server of the postgresql combinations; the generated tests read the same
#: variable, with the same default.
POSTGRES_URL_VARIABLE = "TEST_DATABASE_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

#: Run one SQL statement on a PostgreSQL server, with the project's own asyncpg:
#: ``python -c SNIPPET DSN STATEMENT``.
_POSTGRES_STATEMENT = """\
import asyncio, sys
import asyncpg

async def main(dsn, statement):
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()

asyncio.run(main(*sys.argv[1:]))
"""

#: Environment variables of the calling process that must not reach a project's gates.
#: (Without bytecode every process of every gate would compile each module it imports.)
_LEAKY_ENV = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONDONTWRITEBYTECODE",
    "MYPY_CACHE_DIR",
    "UV_PROJECT_ENVIRONMENT",
    "CONDA_PREFIX",
)
_LEAKY_ENV_PREFIXES = ("PYTEST_", "COV_CORE_", "COVERAGE_")


class RenderError(Exception):
    """Copier refused the answers or could not write the project (one line, for users)."""


def render(
    dest: Path,
    data: Mapping[str, Any],
    *,
    defaults: bool = True,
    isolated: bool = False,
    src: Path | None = None,
) -> dict[str, Any]:
    """Render the template into ``dest`` and return the recorded answers.

    The template renders from the working tree of a source checkout (``vcs_ref="HEAD"``,
    uncommitted changes included). ``isolated`` points Copier at an empty settings file so
    no user default leaks into the result (tests and ``kiln verify`` use it).
    """
    root = src or template_root()
    vcs_ref = "HEAD" if (root / ".git").exists() else None
    previous = os.environ.get("COPIER_SETTINGS_PATH")
    if isolated:
        empty = dest.parent / ".copier-settings.yml"
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.write_text("{}\n", encoding="utf-8")
        os.environ["COPIER_SETTINGS_PATH"] = str(empty)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Copier warns about the dirty working tree
            copier.run_copy(
                str(root),
                dest,
                data=dict(data),
                defaults=defaults,
                vcs_ref=vcs_ref,
                quiet=True,
                unsafe=False,
            )
    except (ValueError, copier.errors.CopierError) as exc:
        raise RenderError(_one_line(exc)) from exc
    finally:
        if isolated:
            if previous is None:
                os.environ.pop("COPIER_SETTINGS_PATH", None)
            else:
                os.environ["COPIER_SETTINGS_PATH"] = previous
    return read_answers(dest)


def read_answers(project: Path) -> dict[str, Any]:
    """The answers a project recorded in its ``.copier-answers.yml``."""
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    return dict(answers or {})


def message_after_copy(answers: Mapping[str, Any], dest: Path) -> str:
    """The template's own closing message (``_message_after_copy``), rendered."""
    config = yaml.safe_load((template_root() / "copier.yml").read_text(encoding="utf-8"))
    text = str(config.get("_message_after_copy", ""))
    context = {**answers, "_copier_conf": {"dst_path": str(dest)}}
    env = jinja2.Environment(autoescape=False)  # noqa: S701 - terminal text, not HTML
    return env.from_string(text).render(context).rstrip()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --- gates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """One check of a generated project: a command run in the project's directory.

    ``env`` is added to the gates' environment for this command. A ``cleanup`` gate runs even
    after an earlier gate failed (it undoes what a gate before it set up); its own failure
    counts like any other. ``cache`` names the tool's cache directory in the project, which
    may start as a copy of another project's (`WarmCaches`).
    """

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    cleanup: bool = False
    cache: str | None = None

    def __str__(self) -> str:
        assignments = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        return " ".join([*assignments, shlex.join(self.argv)])


def gates(combination: Combination, *, load: bool = False) -> list[Gate]:
    """The gates a generated project must pass: its own declared tools, in its own venv;
    with ``load``, its server under load last (`load_gates`)."""
    venv_bin = Path(".venv") / "bin"
    checks = [
        install_gate(),
        Gate("ruff", (str(venv_bin / "ruff"), "check", ".")),
        Gate("format", (str(venv_bin / "ruff"), "format", "--check", ".")),
        *security_gates(),
        Gate("mypy", (str(venv_bin / "mypy"),), cache=".mypy_cache"),
        Gate("pytest", (str(venv_bin / "pytest"), "-p", "no:cacheprovider")),
    ]
    database = str(combination.data.get("database", "sqlite"))
    orm = bool(combination.data.get("use_orm"))
    checks.extend(live_gates("fuzz", database if orm else None))
    if orm:
        checks.extend(migration_gates(database))
    if combination.data.get("use_docker"):
        checks.extend(docker_gates(database if orm else None))
    if load:
        checks.extend(live_gates("load", database if orm else None))
    return checks


def install_gate() -> Gate:
    """The project's own environment (`.venv`), from its declared dependencies, with uv."""
    return Gate("install", (find_uv_bin(), "sync", "--python", sys.executable))


def missing_tools(combinations: Sequence[Combination]) -> list[str]:
    """The tools of Kiln's ``verify`` extra that the gates of ``combinations`` need and this
    environment lacks."""
    tools = Path(sys.executable).parent
    missing = {
        Path(gate.argv[0]).name
        for combination in combinations
        for gate in gates(combination)
        if gate.argv[0] != sys.executable
        and Path(gate.argv[0]).parent == tools
        and not Path(gate.argv[0]).exists()
    }
    for module, distribution in _VERIFY_MODULES:
        if importlib.util.find_spec(module) is None:
            missing.add(distribution)
    return sorted(missing)


#: Modules of the ``verify`` extra that the gates import rather than run: the secret scan,
#: the fuzzing and the load (`generator.secret_scan`, `generator.live`).
_VERIFY_MODULES = (
    ("detect_secrets", "detect-secrets"),
    ("schemathesis", "schemathesis"),
    ("httpx", "httpx"),
    ("websockets", "websockets"),
)


def security_gates() -> list[Gate]:
    """Static security checks, with Kiln's own test tools (next to its Python): bandit at
    medium severity and above on the code, the generated workflow against the GitHub
    workflow schema and through zizmor's offline audits, and no secret in any file a user
    commits (`generator.secret_scan`)."""
    tools = Path(sys.executable).parent
    workflow = str(Path(".github") / "workflows" / "ci.yml")
    return [
        Gate("bandit", (str(tools / "bandit"), "-r", ".", "-x", "./.venv", "-ll", "-q")),
        Gate(
            "workflow-schema",
            (
                str(tools / "check-jsonschema"),
                "--builtin-schema",
                "vendor.github-workflows",
                workflow,
            ),
        ),
        Gate("zizmor", (str(tools / "zizmor"), "--offline", workflow)),
        Gate("secrets", (sys.executable, "-m", "generator.secret_scan", ".")),
    ]


def load_gates(combination: Combination) -> list[Gate]:
    """Install the project and put its server under load (`generator.live load`): 200 HTTP
    clients for 20 s, and with websockets 500 members in one room."""
    database = str(combination.data.get("database", "sqlite"))
    orm = bool(combination.data.get("use_orm"))
    return [install_gate(), *live_gates("load", database if orm else None)]


def live_gates(mode: str, database: str | None, *options: str) -> list[Gate]:
    """The project's server on loopback, fuzzed or loaded (`generator.live`): on a fresh
    SQLite file of its own, or on a throw-away PostgreSQL database created for it."""
    live = (sys.executable, "-m", "generator.live", mode, ".", *options)
    if database != "postgresql":
        return [Gate(mode, live)]
    create, url, drop = _throw_away_postgres(f"{mode}-db", f"kiln_{mode}")
    return [create, Gate(mode, (*live, "--database-url", url)), drop]


def migration_gates(database: str) -> list[Gate]:
    """Upgrade, downgrade, upgrade again and ``alembic check``, with the project's own alembic
    CLI, on a fresh database of the combination's engine: a new SQLite file in the freshly
    rendered project, or a throw-away PostgreSQL database created for it and dropped after."""
    alembic = str(Path(".venv") / "bin" / "alembic")
    if database != "postgresql":
        env = {"DATABASE_URL": "sqlite+aiosqlite:///./migrations-check.db"}
        return _alembic_round_trip(alembic, env)
    create, url, drop = _throw_away_postgres("db", "kiln_migrations")
    return [create, *_alembic_round_trip(alembic, {"DATABASE_URL": url}), drop]


def docker_gates(database: str | None) -> list[Gate]:
    """The Docker files without a Docker engine: hadolint on the Dockerfile (its default
    level), compose.yaml against the Compose specification, and the image's rehearsal
    (`generator.rehearsal`), on a throw-away PostgreSQL database with that engine.

    hadolint and check-jsonschema are Kiln's own test dependencies, next to its Python."""
    tools = Path(sys.executable).parent
    rehearsal = (sys.executable, "-m", "generator.rehearsal", ".")
    checks = [
        Gate("hadolint", (str(tools / "hadolint"), "Dockerfile")),
        Gate(
            "compose-schema",
            (
                str(tools / "check-jsonschema"),
                "--builtin-schema",
                "vendor.compose-spec",
                "compose.yaml",
            ),
        ),
    ]
    if database != "postgresql":
        return [*checks, Gate("image-rehearsal", rehearsal)]
    create, url, drop = _throw_away_postgres("image-db", "kiln_image")
    return [*checks, create, Gate("image-rehearsal", (*rehearsal, "--database-url", url)), drop]


def _throw_away_postgres(gate_prefix: str, name_prefix: str) -> tuple[Gate, str, Gate]:
    """Gates that create and drop a new database on the PostgreSQL server of the
    postgresql combinations (with the project's own asyncpg), and the database's URL."""
    python = str(Path(".venv") / "bin" / "python")
    server = urlsplit(os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL)
    name = f"{name_prefix}_{uuid.uuid4().hex[:12]}"
    dsn = server._replace(scheme="postgresql").geturl()  # asyncpg's form of the URL

    def on_server(statement: str) -> tuple[str, ...]:
        return (python, "-c", _POSTGRES_STATEMENT, dsn, statement)

    return (
        Gate(f"{gate_prefix}-create", on_server(f'CREATE DATABASE "{name}"')),
        server._replace(path=f"/{name}").geturl(),
        Gate(
            f"{gate_prefix}-drop",
            on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
            cleanup=True,
        ),
    )


def _alembic_round_trip(alembic: str, env: Mapping[str, str]) -> list[Gate]:
    return [
        Gate("migrate-up", (alembic, "upgrade", "head"), env),
        Gate("migrate-down", (alembic, "downgrade", "base"), env),
        Gate("migrate-up-again", (alembic, "upgrade", "head"), env),
        Gate("migrate-check", (alembic, "check"), env),
    ]


@dataclass(frozen=True)
class WarmCaches:
    """Tool caches that one run's projects hand on to each other, kept under ``directory``.

    After a gate with a ``cache`` passes, its cache is offered here, and kept if it is a
    twentieth larger than the one kept so far (of two offers at once, the later is kept).
    The same gate of a later project starts from a copy of the kept one. Every process of a
    run may share the directory: what is kept is never written again, and the record of
    which copy is current is replaced in one step.

    mypy is the tool that has one; the third-party packages every combination installs are
    what it saves analysing again. mypy trusts a cached module without reading it when the
    file has the recorded path, size and modification second, and the project's own modules
    have the same relative paths in every combination. So a project that starts from a copy
    has every file of its own (outside ``.venv``) stamped later than any file of the projects
    the copy came from: mypy then compares the content hash of each, and checks again every
    module that differs. A project with a symbolic link among its own files starts cold.
    """

    directory: Path

    def plant(self, gate: Gate, project: Path) -> str | None:
        """Give ``project`` a copy of the largest cache of ``gate`` kept so far, unless it has
        one of its own; what was done, for the log."""
        kept = self._current(gate)
        if gate.cache is None or kept is None or (project / gate.cache).exists():
            return None
        own = _own_files(project, skip={gate.cache})
        if own is None:
            return f"{gate.cache}: none copied, as the project has symbolic links"
        stamp = max(time.time(), math.floor(kept.newest) + 1)
        target = project / gate.cache
        try:
            shutil.copytree(self.directory / kept.copy, target, symlinks=True)
            for path in own:
                os.utime(path, (stamp, stamp))
        except OSError as exc:
            shutil.rmtree(target, ignore_errors=True)
            return f"{gate.cache}: none copied ({exc})"
        return f"{gate.cache}: started from a copy kept by an earlier project"

    def offer(self, gate: Gate, project: Path) -> str | None:
        """Keep the cache ``gate`` left in ``project`` if it is enough larger than the one
        kept; what was done, for the log."""
        own = _own_files(project, skip={gate.cache or ""})
        if gate.cache is None or not (project / gate.cache).is_dir() or own is None:
            return None
        try:
            size = _tree_bytes(project / gate.cache)
            kept = self._current(gate)
            if kept is not None and size * 20 <= kept.size * 21:
                return None
            newest = max((path.stat().st_mtime for path in own), default=0.0)
            self.directory.mkdir(parents=True, exist_ok=True)
            copy = f"{gate.name}-{uuid.uuid4().hex}"
            shutil.copytree(project / gate.cache, self.directory / copy, symlinks=True)
            record = self.directory / f".{copy}.current"
            record.write_text(f"{copy} {size} {newest!r}\n", encoding="utf-8")
            record.replace(self._record(gate))
        except OSError as exc:
            return f"{gate.cache}: not kept ({exc})"
        return f"{gate.cache}: kept for the projects after this one ({size} bytes)"

    def _record(self, gate: Gate) -> Path:
        return self.directory / f"{gate.name}.current"

    def _current(self, gate: Gate) -> _KeptCache | None:
        try:
            copy, size, newest = self._record(gate).read_text(encoding="utf-8").split()
            return _KeptCache(copy, int(size), float(newest))
        except (OSError, ValueError):
            return None


@dataclass(frozen=True)
class _KeptCache:
    """A kept cache: its copy's name, its size, and the latest modification time of the
    files of the project it came from (which include any it was planted in)."""

    copy: str
    size: int
    newest: float


def _tree_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def _own_files(project: Path, skip: set[str]) -> list[Path] | None:
    """The project's files, outside its environment (``.venv``) and the directories in
    ``skip``; None if there is a symbolic link among them."""
    files: list[Path] = []
    for root, directories, names in os.walk(project):
        if Path(root) == project:
            directories[:] = [d for d in directories if d != ".venv" and d not in skip]
        for name in [*directories, *names]:
            path = Path(root) / name
            if path.is_symlink():
                return None
            if name in names:
                files.append(path)
    return files


def gate_environment(cache_dir: Path | None) -> dict[str, str]:
    """The environment for a project's gates: ours, minus what would leak into theirs."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _LEAKY_ENV and not key.startswith(_LEAKY_ENV_PREFIXES)
    }
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1")
    if cache_dir is not None:
        env["UV_CACHE_DIR"] = str(cache_dir)
    return env


@dataclass
class Outcome:
    """What happened to one combination."""

    key: str
    project: Path
    log: Path
    failed_gate: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.failed_gate is None

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


def verify(
    combination: Combination,
    workdir: Path,
    *,
    cache_dir: Path | None = None,
    log_dir: Path | None = None,
    load: bool = False,
    warm: WarmCaches | None = None,
) -> Outcome:
    """Render one combination into ``workdir/<key>`` and run its gates (with ``load``, the
    load too), stopping at the first failure. Every command and its output go to the log,
    which the caller keeps on failure. ``warm`` shares tool caches with other projects."""
    project = workdir / combination.key
    logs = log_dir or workdir
    logs.mkdir(parents=True, exist_ok=True)
    outcome = Outcome(combination.key, project, logs / f"{combination.key}.log")
    if project.exists():
        shutil.rmtree(project)
    with outcome.log.open("w", encoding="utf-8") as log:
        log.write(f"# {combination.key}: {combination.data}\n")
        started = time.perf_counter()
        try:
            answers = {"project_name": "Kiln Check", "package_name": CHECK_PACKAGE}
            render(project, {**answers, **combination.data}, isolated=True)
        except RenderError as exc:
            log.write(f"render failed: {exc}\n")
            outcome.failed_gate = "render"
            return outcome
        finally:
            outcome.timings["render"] = time.perf_counter() - started
        env = gate_environment(cache_dir)
        _run_gates(outcome, gates(combination, load=load), env, log, warm)
    return outcome


def check(
    project: Path,
    combination: Combination,
    log_path: Path,
    *,
    cache_dir: Path | None = None,
    checks: Sequence[Gate] | None = None,
) -> Outcome:
    """Run the gates of ``combination`` (or ``checks``) on a project that exists already (an
    updated one, say), stopping at the first failure; the commands and their output go to
    ``log_path``."""
    outcome = Outcome(combination.key, project, log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"# {project}: {combination.data}\n")
        chosen = gates(combination) if checks is None else checks
        _run_gates(outcome, chosen, gate_environment(cache_dir), log)
    return outcome


def _run_gates(
    outcome: Outcome,
    checks: Sequence[Gate],
    env: Mapping[str, str],
    log: TextIO,
    warm: WarmCaches | None = None,
) -> None:
    # The gates' bytecode goes to a directory of their own, outside the project's tree, and
    # is compiled once for all of them rather than in every process. pytest's temporary
    # directories get a root of their own too: pytest runs sharing one delete each other's
    # old directories on exit, and a deletion racing another can fail the run (its warning is
    # an error under the projects' `filterwarnings = ["error"]`).
    with tempfile.TemporaryDirectory(prefix="kiln-gates-") as scratch:
        bytecode, temproot = Path(scratch) / "bytecode", Path(scratch) / "pytest"
        temproot.mkdir()
        env = {**env, "PYTHONPYCACHEPREFIX": str(bytecode), "PYTEST_DEBUG_TEMPROOT": str(temproot)}
        for gate in checks:
            if not outcome.ok and not gate.cleanup:
                continue
            if warm is not None and gate.cache is not None:
                _note(log, warm.plant(gate, outcome.project))
            _run_gate(outcome, gate, env, log)
            if warm is not None and gate.cache is not None and outcome.ok:
                _note(log, warm.offer(gate, outcome.project))
    log.write(f"\n# {'ok' if outcome.ok else 'FAILED at ' + str(outcome.failed_gate)}\n")


def _note(log: TextIO, note: str | None) -> None:
    if note is not None:
        log.write(f"# {note}\n")


def _run_gate(outcome: Outcome, gate: Gate, env: Mapping[str, str], log: TextIO) -> None:
    log.write(f"\n$ {gate}\n")
    log.flush()
    started = time.perf_counter()
    ok = _run(gate, outcome.project, {**env, **gate.env}, log)
    outcome.timings[gate.name] = time.perf_counter() - started
    log.write(f"# {gate.name}: {outcome.timings[gate.name]:.1f} s\n")
    if not ok and outcome.ok:
        outcome.failed_gate = gate.name


def _run(gate: Gate, cwd: Path, env: Mapping[str, str], log: TextIO) -> bool:
    """Run one gate in a process group of its own; one that runs out of time is asked to stop
    (SIGTERM, so that a server it started is stopped too), then killed with its group."""
    try:
        process = subprocess.Popen(  # noqa: S603 - argv built from our own gate list
            gate.argv,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        log.write(f"\n{gate.name} could not start: {exc}\n")
        return False
    try:
        return process.wait(timeout=GATE_TIMEOUT_SECONDS) == 0
    except subprocess.TimeoutExpired:
        log.write(f"\n{gate.name} did not finish within {GATE_TIMEOUT_SECONDS} s\n")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=GATE_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return False


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log, for a failure message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_all(
    combinations: Sequence[Combination],
    workdir: Path,
    *,
    jobs: int,
    cache_dir: Path | None = None,
    log_dir: Path | None = None,
    on_start: Callable[[Combination], None] | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    load: bool = False,
) -> list[Outcome]:
    """Verify many combinations, ``jobs`` at a time, each in its own process, sharing their
    tool caches (`WarmCaches`)."""
    outcomes: list[Outcome] = []
    with (
        tempfile.TemporaryDirectory(prefix="kiln-warm-") as shared,
        ProcessPoolExecutor(max_workers=max(1, jobs)) as pool,
    ):
        warm = WarmCaches(Path(shared))
        futures = {}
        for combination in combinations:
            futures[
                pool.submit(
                    verify,
                    combination,
                    workdir,
                    cache_dir=cache_dir,
                    log_dir=log_dir,
                    load=load,
                    warm=warm,
                )
            ] = combination
            if on_start is not None:
                on_start(combination)
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)
    order = {c.key: i for i, c in enumerate(combinations)}
    return sorted(outcomes, key=lambda o: order[o.key])
