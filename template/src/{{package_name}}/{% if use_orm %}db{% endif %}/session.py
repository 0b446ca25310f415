"""Sessions: one per request, committed before the response is sent, rolled back on error."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine` whose objects stay readable after the commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session in a transaction: committed when the endpoint returns, rolled back if it raises."""
    session_factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with session_factory.begin() as session:
        yield session


# `scope="function"` ends the transaction when the endpoint returns, before the response is
# sent: a client never sees a success for changes that then fail to commit.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
