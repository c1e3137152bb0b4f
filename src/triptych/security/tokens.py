"""JWT bearer tokens, the alternative to keys for callers that already mint tokens
(an identity provider, a gateway): HS256, signed with TRIPTYCH_JWT_SECRET, carrying
`sub`, `exp` and the scopes (`scopes` as a list, or OAuth's space-separated `scope`)."""

from __future__ import annotations

import time

import jwt

ALGORITHM = "HS256"


class InvalidToken(ValueError):
    pass


def issue_token(secret: str, subject: str, scopes: list[str], ttl_s: int = 3600) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": subject, "scopes": list(scopes), "iat": now, "exp": now + ttl_s}, secret, algorithm=ALGORITHM
    )


def verify_token(secret: str, token: str) -> tuple[str, tuple[str, ...]]:
    """(subject, scopes) of a valid token; InvalidToken with the reason otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"the token is not valid: {exc}") from exc
    scopes = claims.get("scopes")
    if scopes is None:
        scopes = str(claims.get("scope", "")).split()
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidToken("the token's `scopes` claim must be a list of strings")
    return str(claims["sub"]), tuple(scopes)
