"""Shared set-up for the template's tests."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.options import Options, load_options

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Point Copier at an empty settings file so no user default leaks into a render."""
    settings = Path(tempfile.mkdtemp(prefix="kiln-copier-settings-")) / "settings.yml"
    settings.write_text("{}\n", encoding="utf-8")
    os.environ["COPIER_SETTINGS_PATH"] = str(settings)


@pytest.fixture(scope="session")
def options() -> Options:
    return load_options(REPO / "copier.yml")


def run_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of this run's that every xdist worker shares (each worker's base
    directory is in the run's own)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(autouse=True)
def _machine_share(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A test marked `alone` runs while no other test of the run does; the others share.

    The load tests measure a server that shares the machine with its clients: the other
    worker's gates, which keep a core busy for minutes, would turn their latency figures
    into noise and could time a healthy server out. A file lock does it across the
    workers: `alone` takes it exclusively, every other test takes it shared.
    """
    alone = request.node.get_closest_marker("alone") is not None
    with (run_directory(tmp_path_factory) / "machine.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
