"""Who may read frames, and how often: bearer tokens, sessions, the per-client rate limit."""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse

from detektr_project.errors import error

# The permission the admin's frame browser needs: the API asks sessions for the same.
VIEW_FRAMES = "frames.view_frame"


def token_is_known(token: str) -> bool:
    """Compare against every token, without stopping early, so timing says nothing."""
    given = token.encode()
    matched = False
    for known in settings.DETEKTR_API_TOKENS:
        matched |= hmac.compare_digest(given, known.encode())
    return matched


def bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def unauthenticated() -> JsonResponse:
    response = error("authentication required: send Authorization: Bearer <token>", 401)
    response["WWW-Authenticate"] = 'Bearer realm="detektr"'
    return response


def access_problem(request: HttpRequest) -> JsonResponse | None:
    """None if the request may read frames; else the 401/403 to answer."""
    if token := bearer_token(request):
        return None if token_is_known(token) else error("the bearer token is not valid", 403)
    user = request.user
    if not user.is_authenticated:
        return unauthenticated()
    # The same people who can open the admin frame browser: staff with the view permission.
    if not (user.is_staff and user.has_perm(VIEW_FRAMES)):
        return error(f"only staff users with the {VIEW_FRAMES} permission may read frames", 403)
    return None


def token_problem(request: HttpRequest) -> JsonResponse | None:
    """For endpoints open to tokens only (/metrics with METRICS_REQUIRE_TOKEN)."""
    if not (token := bearer_token(request)):
        return unauthenticated()
    return None if token_is_known(token) else error("the bearer token is not valid", 403)


def client_key(request: HttpRequest) -> str:
    """Who is calling: a token (hashed: the cache never holds it), a user, or an address."""
    if token := bearer_token(request):
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return "address:" + request.META.get("REMOTE_ADDR", "")


def rate_limited(request: HttpRequest) -> JsonResponse | None:
    """A JSON 429 once a client made API_RATE_LIMIT calls in this minute, else None.

    Counted per calendar minute in the cache: one atomic increment per call.
    """
    limit = settings.API_RATE_LIMIT
    if not limit:
        return None
    now = time.time()
    key = f"api-calls:{client_key(request)}:{int(now // 60)}"
    cache.add(key, 0, timeout=61)
    try:
        calls = cache.incr(key)
    except ValueError:  # expired between add and incr: this call opens the next count
        cache.add(key, 1, timeout=61)
        calls = 1
    if calls <= limit:
        return None
    response = error(f"more than {limit} calls a minute; retry later", 429)
    response["Retry-After"] = str(60 - int(now) % 60)
    return response
