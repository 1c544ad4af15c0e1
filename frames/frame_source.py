"""Where the trace tools read frame rows: this deployment's database, or a remote detektr's
read-only /frames API (`--api-url`, `--token`). Both give the API's JSON shape of a frame."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol, cast

import requests
from django.db import DatabaseError

from frame_tracking.identity import FrameID
from frames.models import Frame, FrameDetailDict, FrameDict

PAGE = 1000  # the API's largest page


class SourceUnavailable(Exception):
    """The database or the remote API could not be read; the message says which and why."""


class FrameSource(Protocol):
    def frame(self, frame_id: FrameID) -> FrameDetailDict | None: ...

    def frames(
        self, since: datetime, until: datetime, camera: str = "", status: str = ""
    ) -> Iterator[FrameDict]: ...


class LocalFrames:
    """The frames table of the database in DATABASE_URL."""

    def frame(self, frame_id: FrameID) -> FrameDetailDict | None:
        try:
            found = Frame.objects.with_frame_id(frame_id).first()
        except DatabaseError as exc:
            raise SourceUnavailable(f"database: {exc}".strip()) from None
        return found.to_detail_dict() if found else None

    def frames(
        self, since: datetime, until: datetime, camera: str = "", status: str = ""
    ) -> Iterator[FrameDict]:
        query = Frame.objects.filter(captured_at__gte=since, captured_at__lt=until)
        if camera:
            query = query.filter(camera_id=camera)
        if status:
            query = query.filter(status=status)
        try:
            for frame in query.order_by("captured_at", "frame_id").iterator(chunk_size=2000):
                yield frame.to_dict()
        except DatabaseError as exc:
            raise SourceUnavailable(f"database: {exc}".strip()) from None


class RemoteFrames:
    """A detektr's /frames API, read page by page (keyset cursor)."""

    def __init__(self, api_url: str, token: str | None, timeout: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def frame(self, frame_id: FrameID) -> FrameDetailDict | None:
        response = self._get(f"/frames/{frame_id}", {})
        return None if response is None else cast(FrameDetailDict, response)

    def frames(
        self, since: datetime, until: datetime, camera: str = "", status: str = ""
    ) -> Iterator[FrameDict]:
        params = {"since": since.isoformat(), "until": until.isoformat(), "limit": str(PAGE)}
        params.update({k: v for k, v in (("camera", camera), ("status", status)) if v})
        while True:
            page = self._get("/frames", params)
            if page is None:
                raise SourceUnavailable(f"{self.api_url}/frames: not found; is this detektr?")
            yield from cast(list[FrameDict], page["frames"])
            if not page.get("next"):
                return
            params["cursor"] = page["next"]

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any] | None:
        url = self.api_url + path
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SourceUnavailable(f"{url}: {exc}") from None
        if response.status_code == 404 and path != "/frames":
            return None
        try:
            body = response.json()
        except ValueError:
            raise SourceUnavailable(f"{url}: HTTP {response.status_code}, not JSON") from None
        if response.status_code != 200:
            problem = body.get("error") if isinstance(body, dict) else body
            raise SourceUnavailable(f"{url}: HTTP {response.status_code}: {problem}")
        return cast(dict[str, Any], body)
