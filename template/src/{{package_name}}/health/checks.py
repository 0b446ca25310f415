"""Readiness checks: named async callables that raise when a dependency is not usable."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

import anyio
from pydantic import BaseModel

ReadinessCheck = Callable[[], Awaitable[None]]

logger = logging.getLogger(__name__)


class CheckResult(BaseModel):
    status: Literal["ok", "failed"]
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, CheckResult]


async def _run_check(name: str, check: ReadinessCheck, time_limit: float) -> CheckResult:
    try:
        with anyio.fail_after(time_limit):
            await check()
    except TimeoutError:
        logger.warning("Readiness check %r gave no answer within %gs", name, time_limit)
        return CheckResult(status="failed", detail=f"no answer within {time_limit:g}s")
    except Exception as exc:
        logger.warning("Readiness check %r failed", name, exc_info=exc)
        return CheckResult(status="failed", detail=type(exc).__name__)
    return CheckResult(status="ok")


async def run_checks(checks: Mapping[str, ReadinessCheck], time_limit: float) -> Readiness:
    """Run all checks concurrently, each given at most `time_limit` seconds."""
    results: dict[str, CheckResult] = {}

    async def run(name: str, check: ReadinessCheck) -> None:
        results[name] = await _run_check(name, check, time_limit)

    async with anyio.create_task_group() as task_group:
        for name, check in checks.items():
            task_group.start_soon(run, name, check)

    ready = all(result.status == "ok" for result in results.values())
    return Readiness(
        status="ready" if ready else "unavailable",
        checks={name: results[name] for name in checks},
    )
