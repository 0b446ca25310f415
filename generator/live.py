"""A generated service as a real server on loopback: fuzzed, and put under load.

``python -m generator.live fuzz PROJECT`` and ``python -m generator.live load PROJECT`` run the
project's own server (``python -m PACKAGE serve`` from its ``.venv``) in production mode on a
free loopback port, on a fresh database with the migrations applied, and with a working
token when the project has auth:

- with the ORM, the superuser that ``create-superuser`` makes, logged in over HTTP;
- without it, a token signed with the server's own key that holds every write scope.

``fuzz`` runs schemathesis over every operation of the service's own OpenAPI document: no
response may be a server error or break the schema it declares. ``load`` runs concurrent HTTP
clients on a mix of reads and writes for a bounded time, where a single unexpected answer or
failed request is an error, and for websocket projects fills one room and checks that every
member receives every message. Both exit 0 or 1 and print what they did.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from generator.project import read_answers
from generator.rehearsal import RehearsalError, free_port, run_step, server_process, wait_for

#: Scopes a token needs for every write of a project with auth and without the ORM.
WRITE_SCOPES = ("items:write", "uploads:write")
#: How long the server may take to become ready.
START_SECONDS = 60.0
#: How long the fuzzing may take (well inside the gate's own limit).
FUZZ_SECONDS = 600.0
#: Errors of the HTTP load kept for the report (all of them are counted).
KEPT_ERRORS = 50
#: The room the websocket load fills.
LOAD_ROOM = "load-test"
#: How often the websocket load says how full the room is, so that a stall shows in the log.
PROGRESS_SECONDS = 5.0


class LiveError(Exception):
    """The server could not be set up, or a check failed; the message says which."""


def _say(text: str) -> None:
    print(text, flush=True)


# --- the server ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """A running service: where it answers, and the headers that authenticate a request."""

    base_url: str
    features: Mapping[str, Any]
    token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http")


def _request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    response = httpx.request(method, url, content=data, headers=dict(headers or {}), timeout=10)
    try:
        return response.status_code, response.json() if response.content else None
    except ValueError:
        return response.status_code, response.text


def sign_token(key: str, subject: str, scopes: Sequence[str], lifetime: int = 3600) -> str:
    """An HS256 JWT with the claims the services require (`exp`, `iat`, `sub`) and `scope`."""

    def encode(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")

    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": subject, "iat": now, "exp": now + lifetime, "scope": " ".join(scopes)}
    signing_input = ".".join(
        encode(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(key.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{encode(signature)}"


def _log_in(base_url: str, email: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": email, "password": password}).encode()
    status, body = _request(
        "POST",
        f"{base_url}/api/v1/auth/token",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise LiveError(f"logging in as the superuser answered {status}: {body}")
    return str(body["access_token"])


@contextmanager
def running_service(project: Path, *, database_url: str | None = None) -> Iterator[Service]:
    """Run the project's server in production mode until the block ends.

    ``database_url`` is a fresh database (required with PostgreSQL); without it an ORM project
    gets a new SQLite file. The server's output is printed when it stops.
    """
    features = read_answers(project)
    package = str(features["package_name"])
    python = str(project / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="kiln-live-") as scratch:
        root = Path(scratch)
        secret_key = secrets.token_urlsafe(32)
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in {"VIRTUAL_ENV", "PYTHONPATH"}
        }
        env.update(
            ENVIRONMENT="production",
            HOST="127.0.0.1",
            WORKERS="1",
            LOG_LEVEL="WARNING",
            LOG_FORMAT="console",
            DOCS_ENABLED="true",
            SECRET_KEY=secret_key,
            UPLOAD_DIR=str(root / "uploads"),
        )
        if features.get("use_orm"):
            env["DATABASE_URL"] = database_url or f"sqlite+aiosqlite:///{root / 'live.db'}"
            run_step(
                "migrate",
                (str(project / ".venv" / "bin" / "alembic"), "upgrade", "head"),
                project,
                env,
            )
        email, password = "admin@example.com", secrets.token_urlsafe(16)
        if features.get("use_auth") and features.get("use_orm"):
            superuser = {
                **env,
                "FIRST_SUPERUSER_EMAIL": email,
                "FIRST_SUPERUSER_PASSWORD": password,
            }
            run_step(
                "create-superuser", (python, "-m", package, "create-superuser"), project, superuser
            )

        port = free_port()  # as late as possible, so that no other server takes it first
        env["PORT"] = str(port)
        base_url = f"http://127.0.0.1:{port}"
        argv = (python, "-m", package, "serve")
        _say(f"$ {shlex.join(argv)}    # the server, on 127.0.0.1:{port}")
        with (root / "server.log").open("w+", encoding="utf-8") as output:
            try:
                with server_process(argv, project, env, output) as process:
                    wait_for(f"{base_url}/health/ready", process, time.monotonic() + START_SECONDS)
                    token = None
                    if features.get("use_auth"):
                        token = (
                            _log_in(base_url, email, password)
                            if features.get("use_orm")
                            else sign_token(secret_key, "kiln-live", WRITE_SCOPES)
                        )
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    service = Service(base_url, features, token, headers)
                    _check_writes(service)
                    yield service
            finally:
                output.seek(0)
                _say(f"\n--- server output ---\n{output.read()}--- end of server output ---")


def _check_writes(service: Service) -> None:
    """The token must really be accepted for writes, or every check after it would only see
    401 and 403 answers."""
    status, body = _request(
        "POST",
        f"{service.base_url}/api/v1/items",
        data=json.dumps({"name": f"probe-{secrets.token_hex(4)}", "price_cents": 1}).encode(),
        headers={**service.headers, "Content-Type": "application/json"},
    )
    if status != 201:
        raise LiveError(f"creating an item with the service's token answered {status}: {body}")
    _say(f"POST /api/v1/items with the token: {status}")


# --- fuzzing ------------------------------------------------------------------------------

#: What every response must satisfy: no server error; the status code, media type, headers
#: and body the operation documents; and a request that breaks the schema is refused.
FUZZ_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)


def fuzz(service: Service, *, max_examples: int, seed: int, workdir: Path) -> None:
    """schemathesis over every operation of the service's OpenAPI document."""
    argv = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{service.base_url}/openapi.json",
        "--checks",
        ",".join(FUZZ_CHECKS),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    for name, value in service.headers.items():
        argv.extend(["--header", f"{name}: {value}"])
    shown = [a if not a.startswith("Authorization:") else "Authorization: Bearer ..." for a in argv]
    _say(f"$ {shlex.join(shown)}")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    try:
        result = subprocess.run(  # noqa: S603 - our own tool, our own arguments
            argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, check=False, timeout=FUZZ_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise LiveError(f"schemathesis did not finish within {FUZZ_SECONDS:.0f} s") from None
    if result.returncode != 0:
        raise LiveError(f"schemathesis found failures (exit {result.returncode}); see above")


# --- load -------------------------------------------------------------------------------

#: The mix of the HTTP load: operation and weight.
LOAD_MIX = (
    ("list", 30),
    ("read", 20),
    ("create", 20),
    ("update", 10),
    ("delete", 10),
    ("health", 5),
    ("upload", 5),
)


@dataclass
class LoadReport:
    """What the HTTP clients did: requests by operation, latencies, the number of errors and
    the first of them."""

    requests: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    error_count: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < KEPT_ERRORS:
            self.errors.append(text)

    def summary(self, seconds: float) -> str:
        total = sum(self.requests.values())
        ordered = sorted(self.latencies) or [0.0]

        def percentile(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

        mix = ", ".join(f"{op} {count}" for op, count in sorted(self.requests.items()))
        return (
            f"{total} requests in {seconds:.1f} s ({total / seconds:.0f}/s; {mix}); "
            f"latency p50 {percentile(0.5):.0f} ms, p99 {percentile(0.99):.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms; {self.error_count} errors"
        )


async def _http_client(
    service: Service, number: int, deadline: float, report: LoadReport, seed: int
) -> None:
    """One client: its own connection, a random walk over the mix, its own items."""
    rng = random.Random(seed + number)  # noqa: S311 - a load mix, not a secret
    operations = [op for op, _ in LOAD_MIX]
    weights = [weight for _, weight in LOAD_MIX]
    own: list[int] = []
    created = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=service.base_url, headers=dict(service.headers), limits=limits, timeout=60.0
    ) as client:
        while time.monotonic() < deadline:
            operation = rng.choices(operations, weights)[0]
            if operation in {"read", "update", "delete"} and not own:
                operation = "create"
            item = rng.choice(own) if own else 0
            expected = 200
            started = time.perf_counter()
            try:
                if operation == "list":
                    response = await client.get(
                        "/api/v1/items",
                        params={"sort": rng.choice(["id", "-name", "price_cents"]), "limit": 20},
                    )
                elif operation == "read":
                    response = await client.get(f"/api/v1/items/{item}")
                elif operation == "create":
                    created += 1
                    body = {
                        "name": f"load-{number}-{created}",
                        "price_cents": rng.randint(0, 10**6),
                    }
                    response = await client.post("/api/v1/items", json=body)
                    expected = 201
                    if response.status_code == expected:
                        own.append(int(response.json()["id"]))
                elif operation == "update":
                    response = await client.patch(
                        f"/api/v1/items/{item}", json={"price_cents": rng.randint(0, 10**6)}
                    )
                elif operation == "delete":
                    response = await client.delete(f"/api/v1/items/{item}")
                    expected = 204
                    own.remove(item)
                elif operation == "health":
                    response = await client.get("/health/live")
                else:
                    files = {"file": (f"load-{number}.txt", b"load test\n", "text/plain")}
                    response = await client.post("/api/v1/uploads", files=files)
                    # Checked and stored by a background job (202), or at once (201).
                    expected = 202 if service.features.get("use_background_tasks") else 201
            except httpx.HTTPError as exc:
                report.error(f"{operation}: {type(exc).__name__}: {exc}")
                continue
            report.latencies.append(time.perf_counter() - started)
            report.requests[operation] += 1
            if response.status_code != expected:
                report.error(
                    f"{operation}: {response.status_code} (expected {expected}): "
                    f"{response.text[:200]}"
                )


async def http_load(service: Service, *, clients: int, seconds: float) -> LoadReport:
    report = LoadReport()
    deadline = time.monotonic() + seconds
    try:
        async with asyncio.timeout(seconds + 120):
            await asyncio.gather(
                *(_http_client(service, n, deadline, report, seed=20261123) for n in range(clients))
            )
    except TimeoutError:
        raise LiveError(f"the HTTP load did not end within {seconds + 120:.0f} s") from None
    return report


@dataclass
class Member:
    """One websocket client of the load's room, and what it received."""

    number: int
    member_id: str | None = None
    texts: set[str] = field(default_factory=set)
    closed: str | None = None


async def _member(
    service: Service,
    member: Member,
    admitted: asyncio.Semaphore,
    stop: asyncio.Event,
    sockets: dict[int, ClientConnection],
) -> None:
    url = f"{service.ws_url}/ws/rooms/{LOAD_ROOM}"
    async with admitted:
        socket = await connect(url, additional_headers=dict(service.headers), open_timeout=60)
    sockets[member.number] = socket
    try:
        welcome = json.loads(await socket.recv())
        if welcome.get("type") != "welcome":
            member.closed = f"first frame was {welcome.get('type')!r}, not the welcome"
            return
        member.member_id = str(welcome["member"]["id"])
        async for raw in socket:
            frame = json.loads(raw)
            if frame.get("type") == "message":
                member.texts.add(str(frame["text"]))
            elif frame.get("type") == "error":
                member.closed = f"error frame: {frame}"
    except ConnectionClosed as exc:
        if not stop.is_set():
            member.closed = f"closed by the server: {exc}"
    else:
        if not stop.is_set() and member.closed is None:
            member.closed = f"closed by the server: {socket.close_code} {socket.close_reason}"


def check_members(members: Sequence[Member], tasks: Sequence[asyncio.Task[None]]) -> None:
    """Fail once a client crashed, or once members failed (closed by the server, sent an
    error, or greeted with something other than the welcome): how many, and why (the
    commonest reasons first)."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise LiveError(f"a websocket client failed: {task.exception()!r}")
    closed = [member for member in members if member.closed]
    if closed:
        reasons = Counter(str(member.closed) for member in closed).most_common(3)
        raise LiveError(
            f"{len(closed)} of {len(members)} members failed "
            f"(the lowest-numbered: member {closed[0].number}): "
            + "; ".join(f"{reason} (x{count})" for reason, count in reasons)
        )


async def websocket_load(service: Service, *, connections: int, messages: int) -> str:
    """Fill one room with ``connections`` members, let ``messages`` of them post one message
    each, and check that every other member receives every one of them, with no member
    dropped on the way."""
    if connections < 2 or not 1 <= messages <= connections:
        raise LiveError("the websocket load needs 2 or more members and 1 to that many messages")
    members = [Member(n) for n in range(connections)]
    sockets: dict[int, ClientConnection] = {}
    stop = asyncio.Event()
    admitted = asyncio.Semaphore(50)  # handshakes in flight at once
    tasks = [asyncio.create_task(_member(service, m, admitted, stop, sockets)) for m in members]
    senders = members[:: connections // messages][:messages]
    texts = {m.number: f"load message {m.number}" for m in senders}

    def missing() -> int:
        return sum(
            1
            for m in members
            for number, text in texts.items()
            if number != m.number and text not in m.texts
        )

    phase = f"the room did not fill with {connections} members within 120 s"
    started = time.monotonic()
    try:
        async with asyncio.timeout(120):
            reported = started
            while (joined_now := sum(m.member_id is not None for m in members)) < connections:
                check_members(members, tasks)
                await asyncio.sleep(0.1)
                if time.monotonic() - reported >= PROGRESS_SECONDS:
                    reported = time.monotonic()
                    _say(f"  {joined_now} members in the room after {reported - started:.0f} s")
        joined = time.monotonic() - started
        phase = "the messages were not all delivered within 60 s"
        sent = time.monotonic()
        async with asyncio.timeout(60):
            for sender in senders:
                await sockets[sender.number].send(
                    json.dumps({"type": "message", "text": texts[sender.number]})
                )
            while missing():
                check_members(members, tasks)
                await asyncio.sleep(0.1)
        delivered = time.monotonic() - sent
        check_members(members, tasks)
    except TimeoutError:
        raise LiveError(f"websocket load: {phase} ({missing()} deliveries missing)") from None
    finally:
        stop.set()
        await asyncio.gather(*(s.close() for s in sockets.values()), return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    expected = len(texts) * (connections - 1)
    return (
        f"{connections} members joined room {LOAD_ROOM!r} in {joined:.1f} s; "
        f"{len(texts)} messages, {expected} deliveries, all received within {delivered:.1f} s"
    )


def run_load(service: Service, args: argparse.Namespace) -> None:
    """The HTTP load, then (for websocket projects) the room."""
    _say(f"\nHTTP load: {args.clients} clients for {args.seconds:.0f} s on {service.base_url}")
    report = asyncio.run(http_load(service, clients=args.clients, seconds=args.seconds))
    _say(report.summary(args.seconds))
    for error in report.errors[:20]:
        _say(f"  error: {error}")
    if report.error_count:
        raise LiveError(f"{report.error_count} of the load's requests failed")
    if not sum(report.requests.values()):
        raise LiveError("the load made no request")
    if service.features.get("use_websockets") and args.connections:
        _say(f"\nwebsocket load: {args.connections} members, {args.messages} messages")
        _say(
            asyncio.run(
                websocket_load(service, connections=args.connections, messages=args.messages)
            )
        )


# --- the command line ---------------------------------------------------------------------


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.live")
    parser.add_argument("mode", choices=("fuzz", "load"))
    parser.add_argument("project", type=Path)
    parser.add_argument("--database-url", help="a fresh database (required with PostgreSQL)")
    parser.add_argument("--max-examples", type=int, default=25, help="fuzz: cases per operation")
    parser.add_argument("--seed", type=int, default=20261123, help="fuzz: the random seed")
    parser.add_argument("--clients", type=int, default=200, help="load: concurrent HTTP clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="load: how long they run")
    parser.add_argument(
        "--connections", type=int, default=500, help="load: websocket members of one room"
    )
    parser.add_argument("--messages", type=int, default=20, help="load: messages sent to it")
    args = parser.parse_args(argv)
    project: Path = args.project.resolve()
    # A gate that runs out of time is stopped with SIGTERM: leave through the `finally`
    # blocks, which stop the server and remove its files.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with running_service(project, database_url=args.database_url) as service:
            if args.mode == "fuzz":
                with tempfile.TemporaryDirectory(prefix="kiln-fuzz-") as workdir:
                    fuzz(
                        service,
                        max_examples=args.max_examples,
                        seed=args.seed,
                        workdir=Path(workdir),
                    )
            else:
                run_load(service, args)
    except (LiveError, RehearsalError, OSError) as exc:
        print(f"\n{args.mode} failed: {exc}", file=sys.stderr, flush=True)
        return 1
    _say(f"\n{args.mode} passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
