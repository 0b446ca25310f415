"""Password hashing with Argon2, off the event loop."""

import anyio
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class PasswordHasher:
    """Hashes and checks passwords in a worker thread: Argon2 is slow on purpose.

    `argon2` sets the cost. The default is argon2-cffi's, the second option RFC 9106
    recommends: argon2id, 3 passes over 64 MiB. Only the tests lower it, to save time.
    """

    def __init__(self, argon2: Argon2Hasher | None = None) -> None:
        self._hash = PasswordHash((argon2 if argon2 is not None else Argon2Hasher(),))
        self._dummy_hash: str | None = None
        self._dummy_lock = anyio.Lock()

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def check(self, password: str, hashed: str | None) -> bool:
        """Whether `password` matches `hashed`.

        Without a hash (no such account) the password is checked against a dummy hash all the
        same, so the time taken does not tell whether the account exists.
        """
        dummy = await self._dummy()
        matches = await anyio.to_thread.run_sync(self._hash.verify, password, hashed or dummy)
        return matches and hashed is not None

    async def _dummy(self) -> str:
        async with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash("not the password of any account")
            return self._dummy_hash
