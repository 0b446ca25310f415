"""Fan-out of room events to every instance of the service: in memory, or through Redis.

Every instance hands each event it publishes to the broadcast, and the broadcast hands every
event, whichever instance published it, to each instance's `deliver` callback. In memory that
is one process. Through Redis, every instance subscribes to one pub/sub channel when it
starts, so no event is missed while a room fills up; each instance receives the events of
all rooms and keeps those of the rooms it has members in.
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import anyio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

MEMORY_URL = "memory://"

#: Longest wait for Redis to connect, answer a command or confirm the subscription.
REDIS_TIMEOUT_SECONDS = 5.0
#: Quick retries of a command that lost its connection. Past them a publish fails (its sender
#: is told) and the subscription is taken up again by `_relay`, for as long as it takes.
REDIS_RETRIES = 3
#: Waits between attempts to get the subscription back after Redis failed.
RESUBSCRIBE_MIN_SECONDS = 0.5
RESUBSCRIBE_MAX_SECONDS = 30.0

Deliver = Callable[[str], None]

logger = logging.getLogger(__name__)


class BroadcastError(Exception):
    """An event could not be published."""


class Broadcast(Protocol):
    async def publish(self, payload: str) -> None:
        """Hand `payload` to the `deliver` callback of every instance; BroadcastError if not."""
        ...


class MemoryBroadcast:
    """One process: publishing delivers at once."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, payload: str) -> None:
        self._deliver(payload)


class RedisBroadcast:
    """Publishes to the Redis channel that every instance subscribes to."""

    def __init__(self, client: Redis, channel: str) -> None:
        self._client = client
        self._channel = channel

    async def publish(self, payload: str) -> None:
        try:
            with anyio.fail_after(REDIS_TIMEOUT_SECONDS):
                await self._client.publish(self._channel, payload)
        except (RedisError, TimeoutError) as exc:
            msg = f"Could not publish to Redis channel {self._channel!r}"
            raise BroadcastError(msg) from exc

    async def ping(self) -> None:
        """Readiness check: Redis answers."""
        await self._client.ping()


async def _relay(pubsub: PubSub, deliver: Deliver) -> None:
    """Deliver every event published on the channel; get the subscription back after failures.

    The client reconnects and subscribes again on its own after short outages; a longer one
    ends in an error, after which this waits (longer each time) and tries again.
    """
    delay = RESUBSCRIBE_MIN_SECONDS
    while True:
        try:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
        except RedisError:
            logger.warning("Lost the Redis subscription; trying again in %gs", delay, exc_info=True)
            await anyio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_SECONDS)
            continue
        delay = RESUBSCRIBE_MIN_SECONDS
        if message is not None and message["type"] == "message":
            deliver(message["data"])


@asynccontextmanager
async def _open_redis(url: str, channel: str, deliver: Deliver) -> AsyncIterator[RedisBroadcast]:
    client = Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.01), REDIS_RETRIES),
    )
    async with client, client.pubsub() as pubsub:
        await pubsub.subscribe(channel)
        # Wait for Redis to confirm, so that no event published from now on is missed.
        with anyio.fail_after(REDIS_TIMEOUT_SECONDS):
            await pubsub.get_message(timeout=None)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_relay, pubsub, deliver)
            try:
                yield RedisBroadcast(client, channel)
            finally:
                tasks.cancel_scope.cancel()


@asynccontextmanager
async def open_broadcast(url: str, channel: str, deliver: Deliver) -> AsyncIterator[Broadcast]:
    """The broadcast `url` names (`memory://` or a Redis URL), closed at exit."""
    if url == MEMORY_URL:
        yield MemoryBroadcast(deliver)
        return
    async with _open_redis(url, channel, deliver) as broadcast:
        yield broadcast
