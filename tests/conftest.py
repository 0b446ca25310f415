"""Shared set-up for the template's tests."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from generator.options import Options, load_options

REPO = Path(__file__).resolve().parent.parent

#: Names the directory of one run of the tests; its xdist workers inherit it.
RUN_DIRECTORY = "KILN_TESTS_RUN_DIRECTORY"


def pytest_configure(config: pytest.Config) -> None:
    """Make the run's directory (in the process that starts the run; its xdist workers
    inherit it) and point Copier at an empty settings file in it, so that no user default
    leaks into a render. The directory is removed when the run ends."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        run = tempfile.mkdtemp(prefix="kiln-tests-")
        os.environ[RUN_DIRECTORY] = run

        def remove() -> None:
            os.environ.pop(RUN_DIRECTORY, None)
            shutil.rmtree(run, ignore_errors=True)

        config.add_cleanup(remove)
        (Path(run) / "copier-settings.yml").write_text("{}\n", encoding="utf-8")
    os.environ["COPIER_SETTINGS_PATH"] = str(run_directory() / "copier-settings.yml")


def run_directory() -> Path:
    """The directory of this run of the tests, which every xdist worker shares."""
    return Path(os.environ[RUN_DIRECTORY])


@pytest.fixture(scope="session")
def options() -> Options:
    return load_options(REPO / "copier.yml")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Run a test marked `alone` while no other test of the run does, fixtures included."""
    with machine_share(alone=item.get_closest_marker("alone") is not None):
        return (yield)


@contextmanager
def machine_share(*, alone: bool) -> Iterator[None]:
    """Hold the machine: alone, or shared with the other tests that do not need it alone.

    The load tests measure a server that shares the machine with its clients: the other
    workers' gates, which keep a core busy for minutes, would turn their latency figures
    into noise and could time a healthy server out. File locks do it across the workers.
    The machine's lock is taken exclusively or shared; to take it, a test first takes its
    turn, the same way, and gives the turn back once it holds the machine. A test waiting
    to be alone thus holds back the tests that come after it (a shared lock alone would
    let them in before it, for as long as any worker has tests left).
    """
    mode = fcntl.LOCK_EX if alone else fcntl.LOCK_SH
    run = run_directory()
    with (run / "turn.lock").open("a") as turn, (run / "machine.lock").open("a") as machine:
        fcntl.flock(turn, mode)
        try:
            fcntl.flock(machine, mode)
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)
