"""Error answers: JSON for the API (everything under /frames, /health and /metrics), Django's
own pages for the admin.

Django answers a request it refuses before any view runs (an unmatched path, too many query
parameters, a failed CSRF check, an exception) with an HTML page. A program calling the API
gets JSON instead, with the same status, from the handlers below (named in urls.py and
settings.CSRF_FAILURE_VIEW). A database that is away is a JSON 503 (database_required).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf, defaults
from django.views.debug import SafeExceptionReporterFilter

View = Callable[..., HttpResponse]
SAFE_METHODS = frozenset({"GET", "HEAD"})
# What a client should wait before asking again while the database is away: about what a
# PostgreSQL restart or a failover to a standby takes.
DATABASE_RETRY_AFTER_SECONDS = 10

logger = logging.getLogger(__name__)


def error(msg: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": msg}, status=status)


def is_api(request: HttpRequest) -> bool:
    path = request.path_info
    return path in ("/frames", "/health", "/metrics") or path.startswith("/frames/")


def allow_only(*methods: str) -> Callable[[View], View]:
    """Any other method is a JSON 405 naming the allowed ones.

    A view that only reads is also exempt from CSRF checks: nothing can be forged through it,
    and a POST to it gets this 405 rather than a CSRF 403 page.
    """
    allowed = frozenset(methods)

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = error(f"method {request.method} not allowed; use {methods[0]}", 405)
                response["Allow"] = ", ".join(methods)
                return response
            return view(request, *args, **kwargs)

        if allowed <= SAFE_METHODS:
            wrapper.csrf_exempt = True  # type: ignore[attr-defined]
        return wrapper

    return decorate


def database_required(view: View) -> View:
    """A database that is away is a JSON 503 with Retry-After, not a 500.

    OperationalError: Django cannot connect, or the connection broke ("server closed the
    connection unexpectedly", then "the connection is closed"); InterfaceError: what some
    drivers raise for a connection that broke. The outage is PostgreSQL's, not a bug here:
    one WARNING line per request, no traceback (/health says so too). Every other database
    error (a ProgrammingError, an IntegrityError) is a bug: a 500 with its traceback.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            return database_unavailable(request, exc)

    return wrapper


def database_unavailable(request: HttpRequest, exc: Exception) -> JsonResponse:
    cause = " ".join(str(exc).split()) or type(exc).__name__  # libpq's message is multi-line
    logger.warning("database unavailable: %s %s: %s", request.method, request.path, cause)
    response = error("database unavailable", 503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    # Logged once, above: Django's request handler would log this 503 again, at ERROR. Its
    # own mark for a response already logged (django.utils.log.log_response).
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, TooManyFieldsSent):
        return error("too many query parameters")
    return error("bad request")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.permission_denied(request, exception)
    return error("forbidden", 403)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.page_not_found(request, exception)
    return error(f"no such resource: {request.path_info}; see /frames/openapi.json", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not is_api(request):
        return defaults.server_error(request)
    return error("internal error; the server log has the details", 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if not is_api(request):
        return csrf.csrf_failure(request, reason)
    return error("CSRF check failed: send the csrftoken cookie and X-CSRFToken header", 403)


class SettingsFilter(SafeExceptionReporterFilter):
    """Error reports (DEBUG pages, error e-mails) also hide every *_URL and CACHES setting:
    the broker's, Redis's and the cache's URLs carry their passwords."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|CACHES", flags=re.IGNORECASE
    )
