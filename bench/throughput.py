"""Throughput of a generated service against bare baselines, served the same way.

    python bench/throughput.py                       both engines, 10 s per run, 3 rounds
    python bench/throughput.py --engine sqlite --seconds 5 --rounds 1

For each database engine it renders the default combination with that engine, installs it
(`uv sync`), migrates a fresh database and fills it with 100 items, then serves, one after
the other with the same uvicorn settings (one worker, loopback, access log off, log level
WARNING):

- the generated service (`uvicorn <package>.main:create_app --factory`),
- a bare FastAPI app whose `GET /health/live` returns the same body,
- a minimal FastAPI + SQLAlchemy app whose `GET /api/v1/items` runs the same two queries
  (count, then the first page of 20 by id) on the same database and returns the same JSON.

wrk (Debian's `wrk` package) drives each for `--seconds`, rounds interleaved so that drift
in the machine's load hits both sides alike; the median requests per second of the rounds
are compared. Targets: health ≥ 0.9 of the bare app, items ≥ 0.8 of the minimal app.
Figures, not tests: nothing here fails on a slow run. Loopback only; every server is
stopped before the script ends.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from uv import find_uv_bin

from generator.project import DEFAULT_POSTGRES_URL, POSTGRES_URL_VARIABLE, gate_environment, render

PACKAGE = "bench_service"

BARE_APP = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
"""

MINIMAL_ORM_APP = """\
import os
from datetime import datetime

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import String, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ItemRow(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(1000))
    price_cents: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Item(BaseModel):
    id: int
    name: str
    description: str | None
    price_cents: int
    created_at: datetime
    updated_at: datetime


class ItemPage(BaseModel):
    items: list[Item]
    total: int
    limit: int
    offset: int


engine = create_async_engine(os.environ["DATABASE_URL"])
sessions = async_sessionmaker(engine, expire_on_commit=False)
app = FastAPI()


@app.get("/api/v1/items")
async def list_items(limit: int = 20, offset: int = 0) -> ItemPage:
    async with sessions() as session:
        total = (await session.execute(select(func.count()).select_from(ItemRow))).scalar_one()
        page = select(ItemRow).order_by(ItemRow.id).limit(limit).offset(offset)
        rows = await session.scalars(page)
        items = [
            Item(
                id=row.id,
                name=row.name,
                description=row.description,
                price_cents=row.price_cents,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]
    return ItemPage(items=items, total=total, limit=limit, offset=offset)
"""

SEED = """\
import asyncio, os
from datetime import UTC, datetime
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

async def main():
    engine = create_async_engine(os.environ["DATABASE_URL"])
    now = datetime.now(UTC).replace(tzinfo=None)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO items (name, description, price_cents, created_at, updated_at) "
                "VALUES (:name, :description, :price_cents, :now, :now)"
            ),
            [
                {"name": f"item {i:03}", "description": "benchmark", "price_cents": i, "now": now}
                for i in range(100)
            ],
        )
    await engine.dispose()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
    done = subprocess.run(  # noqa: S603 - our own commands
        argv, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def serving(app: list[str], cwd: Path, env: Mapping[str, str], probe: str) -> Iterator[str]:
    """Serve ``app`` (uvicorn's arguments) on a free loopback port; yield its base URL once
    ``probe`` answers."""
    port = free_port()
    python = cwd / ".venv" / "bin" / "python"
    argv = [str(python), "-m", "uvicorn", *app, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    server = subprocess.Popen(  # noqa: S603 - our own command
        argv, cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + probe, timeout=1):  # noqa: S310
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    sys.exit(f"bench: {' '.join(app)} did not start:\n{server.communicate()[1]}")
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wrk(url: str, seconds: int, connections: int) -> tuple[float, int]:
    """Requests per second and the count of errors (socket errors and non-2xx answers)."""
    done = subprocess.run(  # noqa: S603 - wrk on loopback with our arguments
        [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    )
    rate_match = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if rate_match is None:
        sys.exit(f"bench: no rate in wrk's output:\n{done.stdout}")
    rate = float(rate_match[1])
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", done.stdout))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout):
        errors += int(match[1])
    return rate, errors


WRK = shutil.which("wrk") or ""


def prepare(engine: str, workdir: Path) -> tuple[Path, dict[str, str]]:
    """Render and install the service, and give it a migrated database with 100 items."""
    project = workdir / f"service-{engine}"
    render(
        project,
        {"project_name": "Bench Service", "use_orm": True, "database": engine},
        isolated=True,
    )
    env = gate_environment(None)
    run([find_uv_bin(), "sync", "--python", sys.executable], project, env)
    if engine == "sqlite":
        database_url = f"sqlite+aiosqlite:///{project / 'bench.db'}"
    else:
        server = os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL
        name = f"kiln_bench_{uuid.uuid4().hex[:8]}"
        database_url = server.rsplit("/", 1)[0] + f"/{name}"
        run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], project, env)
    env.update(
        DATABASE_URL=database_url,
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        SECRET_KEY="bench-secret-key-that-is-long-enough-for-hs256-0123456789",  # noqa: S106
    )
    python = str(project / ".venv" / "bin" / "python")
    run([str(project / ".venv" / "bin" / "alembic"), "upgrade", "head"], project, env)
    run([python, "-c", SEED], project, env)
    (project / "bench_bare.py").write_text(BARE_APP, encoding="utf-8")
    (project / "bench_minimal_orm.py").write_text(MINIMAL_ORM_APP, encoding="utf-8")
    return project, env


def compare(
    project: Path,
    env: Mapping[str, str],
    path: str,
    baseline: str,
    *,
    seconds: int,
    rounds: int,
    connections: int,
) -> dict[str, float]:
    """Median requests per second of the service and of ``baseline`` on ``path``."""
    sides = {
        "service": [f"{PACKAGE}.main:create_app", "--factory"],
        "baseline": [baseline],
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    errors = 0
    for _ in range(rounds):
        for name, app in sides.items():
            with serving(app, project, env, path) as base:
                wrk(base + path, 2, connections)  # warm-up
                rate, failed = wrk(base + path, seconds, connections)
            rates[name].append(rate)
            errors += failed
    result = {name: statistics.median(values) for name, values in rates.items()}
    result["ratio"] = result["service"] / result["baseline"]
    result["errors"] = errors
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if not WRK:
        sys.exit("bench: wrk is not installed; `apt-get install wrk` (Debian) and run again")
    engines = ["sqlite", "postgresql"] if args.engine == "all" else [args.engine]
    print(f"# {platform.python_version()}, {os.cpu_count()} cores, wrk -t1 -c{args.connections}")
    print(f"# {args.seconds} s per run, median of {args.rounds} interleaved rounds")
    print("| endpoint | engine | service req/s | baseline req/s | ratio | target | errors |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
        measure = {"seconds": args.seconds, "rounds": args.rounds, "connections": args.connections}
        for engine in engines:
            project, env = prepare(engine, Path(tmp))
            rows = [
                ("GET /health/live", "/health/live", "bench_bare:app", 0.9),
                ("GET /api/v1/items", "/api/v1/items", "bench_minimal_orm:app", 0.8),
            ]
            for label, path, baseline, target in rows:
                figures = compare(project, env, path, baseline, **measure)
                print(
                    f"| {label} | {engine} | {figures['service']:.0f} | {figures['baseline']:.0f}"
                    f" | {figures['ratio']:.2f} | ≥ {target} | {figures['errors']:.0f} |",
                    flush=True,
                )
            if engine == "postgresql":
                name = env["DATABASE_URL"].rsplit("/", 1)[1]
                run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", name], project, env)


if __name__ == "__main__":
    main()
