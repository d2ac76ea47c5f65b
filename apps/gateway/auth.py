"""Who is asking: the gateway's authentication (issue 14 items 9 and 10).

``IMGSEARCH_GATEWAY_AUTH`` chooses how (``Settings.gateway_auth``); without it the gateway does not
start:

- ``jwt``: ``Authorization: Bearer <token>``, a JWT signed by the identity provider and verified
  with PyJWT against ``IMGSEARCH_GATEWAY_JWT_JWKS_URL`` (the provider's JWKS, fetched and cached) or
  ``IMGSEARCH_GATEWAY_JWT_KEY_FILE`` (a PEM public key, a JWK/JWKS JSON file, or an HMAC secret for
  ``HS*`` algorithms). ``exp`` is required; ``aud``/``iss`` are checked when configured. The user id
  is the ``IMGSEARCH_GATEWAY_JWT_USER_CLAIM`` claim (default ``sub``).
- ``api_key``: ``X-API-Key: <key>`` for service clients. ``IMGSEARCH_GATEWAY_API_KEYS_FILE`` holds
  one ``<user id> <sha256 hex of the key>`` per line (the keys themselves are never stored); the
  key's line names the one user the client acts as.
- ``jwt,api_key``: either.
- ``demo``: no authentication: the user id is whatever the request names. Loud on purpose: a
  WARNING at start, ``"demo": true`` in ``/api/config`` and a banner on the page.

Routes call :func:`authenticated_user` with the user the request names (or ``None``): outside demo
mode the user is the token's; a request naming another user is refused (403 ``user_mismatch``).

:func:`csrf_guard` (a middleware) lets a state-changing request (POST, PUT, PATCH, DELETE) through
only with a JSON body and from the gateway's own origin (or ``IMGSEARCH_GATEWAY_ALLOWED_ORIGINS``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web

from imgsearch.config import Settings, redact_url

log = logging.getLogger(__name__)

MODES = ("jwt", "api_key", "demo")
API_KEY_HEADER = "X-API-Key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEMO_WARNING = (
    "DEMO MODE (IMGSEARCH_GATEWAY_AUTH=demo): the gateway authenticates nobody; anyone who reaches it "
    "can search as any user, read their explanations and record interactions in their name. "
    "Never expose it beyond this machine."
)


class AuthError(Exception):
    """A refusal with an HTTP status and a machine-readable code (rendered like GatewayError)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Principal:
    user_id: str
    method: str  # "jwt" | "api_key" | "demo"


def _bearer_challenge(error: str = "") -> dict[str, str]:
    value = 'Bearer realm="imgsearch"' + (f', error="{error}"' if error else "")
    return {"WWW-Authenticate": value}


def load_api_keys(path: str) -> dict[str, str]:
    """``{sha256 hex: user id}`` from a file of ``<user id> <sha256 hex>`` lines (``#`` comments)."""
    keys: dict[str, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        digest = parts[-1].lower().removeprefix("sha256:")
        if len(parts) != 2 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{path}:{n}: expected '<user id> <sha256 hex of the key>'")
        keys[digest] = parts[0]
    return keys


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    """Verifies the credentials of a request; made once per gateway from the settings."""

    def __init__(self, settings: Settings) -> None:
        modes = [m.strip().lower().replace("-", "_") for m in settings.gateway_auth.split(",") if m.strip()]
        if not modes:
            raise ValueError(
                "IMGSEARCH_GATEWAY_AUTH is not set: set it to jwt and/or api_key (with "
                "IMGSEARCH_GATEWAY_JWT_JWKS_URL / _JWT_KEY_FILE / IMGSEARCH_GATEWAY_API_KEYS_FILE), "
                "or to demo for an unauthenticated local demo"
            )
        unknown = sorted(set(modes) - set(MODES))
        if unknown:
            raise ValueError(f"IMGSEARCH_GATEWAY_AUTH: unknown mode(s) {unknown}; use jwt, api_key or demo")
        if "demo" in modes and len(modes) > 1:
            raise ValueError("IMGSEARCH_GATEWAY_AUTH=demo cannot be combined with other modes")
        self.modes = tuple(modes)
        self.demo = modes == ["demo"]
        self.user_claim = settings.gateway_jwt_user_claim or "sub"
        self.algorithms = [a.strip() for a in settings.gateway_jwt_algorithms.split(",") if a.strip()]
        self.audience = settings.gateway_jwt_audience or None
        self.issuer = settings.gateway_jwt_issuer or None
        self.leeway = settings.gateway_jwt_leeway_s
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        self._keyset: jwt.PyJWKSet | None = None
        self._api_keys: dict[str, str] = {}
        if "jwt" in modes:
            if "none" in (a.lower() for a in self.algorithms) or not self.algorithms:
                raise ValueError("IMGSEARCH_GATEWAY_JWT_ALGORITHMS must name signing algorithms (not 'none')")
            if settings.gateway_jwt_jwks_url:
                self._jwks = jwt.PyJWKClient(settings.gateway_jwt_jwks_url, cache_keys=True, lifespan=300, timeout=5)
                self._jwks_url = redact_url(settings.gateway_jwt_jwks_url)
            elif settings.gateway_jwt_key_file:
                self._load_key_file(settings.gateway_jwt_key_file)
            else:
                raise ValueError(
                    "IMGSEARCH_GATEWAY_AUTH=jwt needs IMGSEARCH_GATEWAY_JWT_JWKS_URL or IMGSEARCH_GATEWAY_JWT_KEY_FILE"
                )
        if "api_key" in modes:
            if not settings.gateway_api_keys_file:
                raise ValueError("IMGSEARCH_GATEWAY_AUTH=api_key needs IMGSEARCH_GATEWAY_API_KEYS_FILE")
            self._api_keys = load_api_keys(settings.gateway_api_keys_file)

    def _load_key_file(self, path: str) -> None:
        raw = Path(path).read_bytes().strip()
        if raw.startswith(b"{"):  # a JWK or a JWKS
            data = json.loads(raw)
            self._keyset = jwt.PyJWKSet.from_dict(data if "keys" in data else {"keys": [data]})
        elif raw.startswith(b"-----BEGIN"):
            self._key = raw.decode()
        else:  # an HMAC secret: only with HS* algorithms (PyJWT refuses PEM keys as HMAC secrets)
            if not all(a.upper().startswith("HS") for a in self.algorithms):
                raise ValueError(f"{path} is not a PEM key or a JWKS: as an HMAC secret it needs HS* algorithms only")
            if len(raw) < 32:
                raise ValueError(f"{path}: an HMAC secret must have at least 32 bytes")
            self._key = raw

    def describe(self) -> str:
        if self.demo:
            return "demo (no authentication)"
        parts = []
        if "jwt" in self.modes:
            source = f"JWKS {self._jwks_url}" if self._jwks is not None else "a key file"
            parts.append(f"JWT ({','.join(self.algorithms)}) verified against {source}, user claim {self.user_claim!r}")
        if "api_key" in self.modes:
            parts.append(f"API keys ({len(self._api_keys)})")
        return " or ".join(parts)

    # ------------------------------------------------------------------ verification
    async def _signing_key(self, token: str) -> Any:
        if self._jwks is not None:
            try:  # PyJWKClient fetches (then caches) over urllib: off the event loop
                return (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
            except jwt.PyJWKClientConnectionError as exc:
                raise AuthError(
                    503, "auth_unavailable", f"the identity provider's keys cannot be fetched: {exc}"
                ) from exc
        if self._keyset is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = self._keyset.keys
            match = [k for k in keys if kid is None or k.key_id == kid]
            if not match:
                raise jwt.InvalidTokenError(f"no key with kid {kid!r}")
            return match[0].key
        return self._key

    async def verify_jwt(self, token: str) -> Principal:
        try:
            key = await self._signing_key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", self.user_claim]},
            )
        except jwt.PyJWKClientError as exc:
            raise AuthError(401, "invalid_token", f"invalid token: {exc}", _bearer_challenge("invalid_token")) from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, "invalid_token", f"invalid token: {exc}", _bearer_challenge("invalid_token")) from exc
        user = claims.get(self.user_claim)
        if not isinstance(user, str) or not user:
            raise AuthError(401, "invalid_token", f"the token's {self.user_claim!r} claim is not a user id")
        return Principal(user, "jwt")

    def verify_api_key(self, key: str) -> Principal:
        user = self._api_keys.get(hash_api_key(key))
        if user is None:
            raise AuthError(401, "invalid_api_key", "unknown API key")
        return Principal(user, "api_key")

    async def authenticate(self, request: web.Request) -> Principal | None:
        """The request's principal; ``None`` in demo mode; :class:`AuthError` (401) without valid
        credentials."""
        if self.demo:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if "jwt" in self.modes and scheme.lower() == "bearer" and token.strip():
            return await self.verify_jwt(token.strip())
        api_key = request.headers.get(API_KEY_HEADER, "")
        if "api_key" in self.modes and api_key:
            return self.verify_api_key(api_key)
        wanted = " or ".join(
            w
            for m, w in (("jwt", "Authorization: Bearer <token>"), ("api_key", f"{API_KEY_HEADER}: <key>"))
            if m in self.modes
        )
        raise AuthError(401, "unauthenticated", f"authentication required ({wanted})", _bearer_challenge())


AUTH = web.AppKey("auth", Authenticator)


async def authenticated_user(request: web.Request, claimed: Any = None) -> str:
    """The user a request acts as: the token's (or API key's) user; in demo mode the ``claimed``
    user (the request's own ``user``/``user_id``). Outside demo mode, a ``claimed`` user other than
    the authenticated one is refused (403), never silently replaced."""
    claimed_id = str(claimed).strip() if claimed not in (None, "") else ""
    principal = await request.app[AUTH].authenticate(request)
    if principal is None:  # demo
        if not claimed_id:
            raise AuthError(400, "invalid_request", "a user id is needed (user)")
        return claimed_id
    if claimed_id and claimed_id != principal.user_id:
        raise AuthError(403, "user_mismatch", f"authenticated as {principal.user_id!r}: cannot act as {claimed_id!r}")
    return principal.user_id


# ---------------------------------------------------------------------- CSRF (item 10)
def _allowed_origins(request: web.Request, extra: frozenset[str]) -> set[str]:
    own = f"{request.scheme}://{request.host}"
    return {own.lower(), *extra}


def make_csrf_guard(settings: Settings) -> Callable[..., Awaitable[web.StreamResponse]]:
    extra = frozenset(o.strip().rstrip("/").lower() for o in settings.gateway_allowed_origins.split(",") if o.strip())

    @web.middleware
    async def csrf_guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """State-changing requests only as JSON (a cross-site form or a no-cors ``fetch`` cannot
        send ``application/json`` without a CORS preflight, which the gateway never grants) and only
        from an allowed origin (browsers send ``Origin`` on every cross-origin POST)."""
        if request.method not in SAFE_METHODS:
            if request.content_type != "application/json":
                raise AuthError(
                    415,
                    "unsupported_media_type",
                    f"{request.method} needs Content-Type: application/json (got {request.content_type!r})",
                )
            origin = request.headers.get("Origin")
            if origin is not None and origin.rstrip("/").lower() not in _allowed_origins(request, extra):
                raise AuthError(403, "origin_not_allowed", f"requests from origin {origin!r} are not allowed")
            if origin is None and request.headers.get("Sec-Fetch-Site", "") == "cross-site":
                raise AuthError(403, "origin_not_allowed", "cross-site requests are not allowed")
        return await handler(request)

    return csrf_guard
