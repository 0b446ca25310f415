"""Generated services as real servers (`generator.live`): the load test of a representative
subset of combinations, and proof that the fuzzing and the load fail on a broken service.

Every combination is fuzzed by its own `fuzz` gate in the matrix (tests/test_matrix.py). The
load runs on one combination per database engine, both with websockets, so the HTTP load
covers SQLite and PostgreSQL and the room load runs on both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator.live import WRITE_SCOPES, LiveError, Member, check_members, sign_token
from generator.options import Combination, Options, load_options
from generator.project import check, gate_environment, install_gate, load_gates, render, tail

from .conftest import REPO
from .test_matrix import LOGS, require_services

_OPTIONS = load_options(REPO / "copier.yml")
LOADED = [
    _OPTIONS.combination({"use_websockets": True, "use_orm": True, "database": "sqlite"}),
    _OPTIONS.combination({"use_websockets": True, "use_orm": True, "database": "postgresql"}),
]


@pytest.mark.matrix
@pytest.mark.alone
@pytest.mark.parametrize("combination", LOADED, ids=[c.key for c in LOADED])
def test_the_service_holds_under_load(combination: Combination, tmp_path: Path) -> None:
    require_services(combination)
    project = tmp_path / combination.key
    render(project, {"project_name": "Kiln Load", **combination.data}, isolated=True)

    outcome = check(
        project, combination, LOGS / f"load-{combination.key}.log", checks=load_gates(combination)
    )

    log = outcome.log.read_text(encoding="utf-8")
    if not outcome.ok:
        pytest.fail(
            f"{combination.key}: load failed at {outcome.failed_gate}; full log: {outcome.log}\n"
            f"{tail(outcome.log, 60)}",
            pytrace=False,
        )
    assert "200 clients for 20 s" in log
    assert "500 members joined" in log
    assert "all received" in log
    outcome.log.unlink()


@pytest.fixture(scope="module")
def broken_service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smallest combination, installed, with one operation that always fails (500)."""
    options = load_options(REPO / "copier.yml")
    combination = options.combination(
        {
            "use_auth": False,
            "use_orm": False,
            "use_websockets": False,
            "use_background_tasks": False,
            "use_docker": False,
        }
    )
    project = tmp_path_factory.mktemp("broken") / "broken"
    render(project, {"project_name": "Broken", **combination.data}, isolated=True)
    router = project / "src" / "broken" / "items" / "router.py"
    source = router.read_text(encoding="utf-8")
    healthy = "    return await service.get_item(item_id)\n"
    assert healthy in source
    router.write_text(
        source.replace(healthy, '    raise RuntimeError("broken on purpose")\n'),
        encoding="utf-8",
    )
    install = install_gate()
    subprocess.run(  # noqa: S603 - our own gate
        install.argv,
        cwd=project,
        env=gate_environment(None),
        check=True,
        capture_output=True,
        timeout=600,
    )
    return project


def _live(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "generator.live", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.matrix
def test_fuzzing_fails_on_a_server_error(broken_service: Path) -> None:
    result = _live("fuzz", str(broken_service), "--max-examples", "5")

    assert result.returncode == 1, result.stdout
    assert "GET /api/v1/items/{item_id}" in result.stdout
    assert "Server error" in result.stdout
    assert "fuzz failed: schemathesis found failures" in result.stderr


@pytest.mark.matrix
def test_load_fails_on_a_server_error(broken_service: Path) -> None:
    result = _live("load", str(broken_service), "--clients", "4", "--seconds", "2")

    assert result.returncode == 1, result.stdout
    assert "read: 500 (expected 200)" in result.stdout
    assert "of the load's requests failed" in result.stderr


def test_signed_tokens_carry_the_claims_the_services_require() -> None:
    token = sign_token("k" * 32, "kiln-live", WRITE_SCOPES)

    header, claims, signature = token.split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(decode(header)) == {"alg": "HS256", "typ": "JWT"}
    payload = json.loads(decode(claims))
    assert payload["sub"] == "kiln-live"
    assert payload["scope"] == "items:write uploads:write"
    assert payload["exp"] > payload["iat"]
    expected = hmac.new(b"k" * 32, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    assert decode(signature) == expected


def test_load_subset_covers_each_engine_and_websockets(options: Options) -> None:
    engines = {str(c.data.get("database")) for c in LOADED if c.data.get("use_orm")}

    assert engines == set(options["database"].choices)
    assert all(c.data.get("use_websockets") for c in LOADED)


def test_a_room_load_says_how_many_members_failed_and_why() -> None:
    members = [Member(number) for number in range(6)]
    for number in (2, 3, 5):
        members[number].closed = "closed by the server: 1011 Internal error: connect again later."
    members[4].closed = "error frame: {'type': 'error'}"

    with pytest.raises(LiveError) as failure:
        check_members(members, [])

    assert str(failure.value) == (
        "4 of 6 members failed (the lowest-numbered: member 2): "
        "closed by the server: 1011 Internal error: connect again later. (x3); "
        "error frame: {'type': 'error'} (x1)"
    )


def test_a_room_load_passes_members_that_are_all_in() -> None:
    check_members([Member(number, member_id=f"m{number}") for number in range(3)], [])
