"""Bearer tokens: JWTs checked against a pinned algorithm and the claims the service requires."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import HTTPException, status

REQUIRED_CLAIMS = ("exp", "iat", "sub")


class TokenError(Exception):
    """The token is not acceptable. Deliberately silent about which check failed."""


def credentials_error() -> HTTPException:
    """The one answer to a missing or unacceptable token, whatever was wrong with it."""
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Not authenticated: send a valid bearer token.",
        headers={"WWW-Authenticate": "Bearer"},
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified subject, its scopes and every verified claim."""

    subject: str
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)


class TokenVerifier:
    """Verifies bearer tokens with exactly one algorithm and one key.

    Pinning the algorithm refuses `alg: none` and any confusion between a shared secret and
    a public key; `exp`, `iat` and `sub` are required, and the issuer and audience are
    checked when they are configured.
    """

    def __init__(
        self,
        *,
        key: Any,
        algorithm: str,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._key = key
        self._algorithm = algorithm
        self._issuer = issuer
        self._audience = audience

    def verify(self, token: str) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise TokenError from exc
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise TokenError
        return Principal(subject=subject, scopes=_scopes(claims), claims=claims)


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth 2 scopes from `scope` (space-separated) or `scp` (a list or a string)."""
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return frozenset(raw.split())
    if isinstance(raw, list):
        return frozenset(str(scope) for scope in raw)
    return frozenset()
