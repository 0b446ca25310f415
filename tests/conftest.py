"""Shared set-up for the template's tests."""

from __future__ import annotations

import os
import tempfile
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
