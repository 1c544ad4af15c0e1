"""The /frames API: small, read-only, JSON in every answer, a 4xx for every bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from kombu.exceptions import OperationalError as BrokerError

from detektr_project.errors import allow_only, database_required, error
from frame_tracking.identity import CAMERA_ID_PATTERN, FrameID
from frames import report
from frames.access import access_problem, bearer_token, rate_limited
from frames.forms import Cursor, FrameQuery, ReportQuery
from frames.models import Frame
from frames.openapi import OPENAPI
from workers.canary import BadTraceparent
from workers.canary import send_test_frame as send

View = Callable[..., HttpResponse]
get_only = allow_only("GET", "HEAD")


def authorized(view: View) -> View:
    """Within the rate limit, and a bearer token or a staff session; a JSON 4xx otherwise.

    And a JSON 503 while the database is away, from the session's lookup on: every view
    behind this reads frames or a session from it."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return rate_limited(request) or access_problem(request) or view(request, *args, **kwargs)

    return database_required(wrapper)


def query_problem(request: HttpRequest, form: FrameQuery | ReportQuery) -> str | None:
    """Unknown or repeated parameters are mistakes the form would silently ignore."""
    for name in request.GET:
        if name not in form.fields:
            return f"unknown parameter: {name}"
        if len(request.GET.getlist(name)) > 1:
            return f"parameter given more than once: {name}"
    if form.is_valid():
        return None
    name, messages = next(iter(form.errors.items()))
    message = str(messages[0])
    return message if name == "__all__" else f"{name}: {message}"


@get_only
@authorized
def frame_list(request: HttpRequest) -> JsonResponse:
    form = FrameQuery(request.GET)
    if problem := query_problem(request, form):
        return error(problem)
    filters = dict(form.cleaned_data)
    limit, cursor = filters.pop("limit"), filters.pop("cursor")
    frames = Frame.objects.matching(**filters)
    if cursor:
        frames = frames.before(cursor.captured_at, cursor.frame_id)
    rows, last = frames.page(limit)
    return JsonResponse(
        {
            "frames": [frame.to_dict() for frame in rows],
            "next": Cursor(last.captured_at, last.frame_id).encode() if last else None,
        }
    )


@get_only
@authorized
def frame_detail(request: HttpRequest, frame_id: str) -> JsonResponse:
    if request.GET:
        return error(f"unknown parameter: {next(iter(request.GET))}")
    try:
        parsed = FrameID.parse(frame_id)
    except ValueError:
        return error("frame_id: not a valid frame id")
    frame = Frame.objects.with_frame_id(parsed).first()
    if frame is None:
        return error(f"no frame with id {frame_id}", 404)
    return JsonResponse(frame.to_detail_dict())


@get_only
@authorized
def frame_report(request: HttpRequest) -> JsonResponse:
    form = ReportQuery(request.GET)
    if problem := query_problem(request, form):
        return error(problem)
    return JsonResponse(report.window_report(**form.cleaned_data))


@get_only
def openapi(request: HttpRequest) -> JsonResponse:
    # It describes the API, not any frame: no credentials needed to read it.
    return JsonResponse(OPENAPI)


@csrf_exempt  # a bearer token cannot be forged by another site; a session still needs CSRF
@allow_only("POST")
@authorized
def send_test_frame(request: HttpRequest) -> HttpResponse:
    """POST /frames/test: send a canary frame; answers its frame id and trace id at once."""
    if not bearer_token(request) and (rejected := csrf_rejection(request)):
        return rejected
    try:
        body = json.loads(request.body or b"{}")
    except RecursionError:  # the parser recurses once per [ or {: '[' * 100000 is too deep
        return error(
            'the body is nested too deeply; send one flat object, e.g. {"camera": "canary"}'
        )
    except ValueError:  # not JSON, not UTF-8, an integer of more than 4300 digits
        return error('the body must be JSON, e.g. {"camera": "canary"}')
    if not isinstance(body, dict) or set(body) - {"camera", "traceparent"}:
        return error("the body may have only camera and traceparent")
    camera = body.get("camera", "canary")
    if not isinstance(camera, str) or not CAMERA_ID_PATTERN.fullmatch(camera):
        return error("camera: must be 1-64 characters from A-Z a-z 0-9 . -")
    traceparent = body.get("traceparent")
    if traceparent is not None and not isinstance(traceparent, str):
        return error("traceparent: must be a string")
    try:
        meta = send(camera, traceparent)
    except BadTraceparent as exc:
        return error(f"traceparent: {exc}")
    except (redis.RedisError, BrokerError, OSError) as exc:
        return error(f"Redis or the broker is unreachable: {exc}", 503)
    context = meta.trace_context
    sampled = bool(context and context.sampled)
    trace_id = context.trace_id if context else ""
    return JsonResponse(
        {
            "frame_id": str(meta.frame_id),
            "trace_id": trace_id,
            "sampled": sampled,
            "jaeger_url": f"{settings.JAEGER_UI_URL}/trace/{trace_id}" if sampled else None,
            "url": reverse("frame-detail", args=[str(meta.frame_id)]),
        },
        status=202,
    )


def csrf_rejection(request: HttpRequest) -> HttpResponse | None:
    """Django's own CSRF check for a session request (its failure answers JSON here:
    detektr_project.errors.csrf_failure)."""

    def protected(_: HttpRequest) -> HttpResponse:  # a view without csrf_exempt
        return HttpResponse()

    return CsrfViewMiddleware(protected).process_view(request, protected, (), {})
