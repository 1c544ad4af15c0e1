"""Frame sources: everything OpenCV opens, plus a synthetic test pattern.

`open_source(text)` takes what a user writes after --source: `rtsp://…`, `http(s)://…`
(MJPEG), a video file path, a device index (`0`) or `synthetic://?width=1280&height=720&fps=30`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit, urlunsplit

import cv2
import numpy as np

# How long FFmpeg may wait to open a stream, or for its next frame before read() gives up; a
# stalled camera then surfaces as a failed read (or a late frame, which read() fails too) and the
# worker reconnects. OpenCV enforces both through FFmpeg's interrupt callback, which network
# reads poll, so they hold for RTSP and HTTP MJPEG alike (checked in tests/test_sources.py).
# Overridden by these environment variables:
OPEN_TIMEOUT_VARIABLE, DEFAULT_OPEN_TIMEOUT_MS = "CAMERA_OPEN_TIMEOUT_MS", 10_000
READ_TIMEOUT_VARIABLE, DEFAULT_READ_TIMEOUT_MS = "CAMERA_READ_TIMEOUT_MS", 5_000


class SourceError(Exception):
    """The source could not be opened or stopped delivering frames."""


class Source(Protocol):
    description: str  # safe to log and store: no credentials
    fps: float | None  # the rate the source delivers at, when it says
    paced: bool  # True when read() returns at once and the worker must keep the rate

    def open(self) -> None: ...
    def read(self) -> np.ndarray | None: ...  # None at end of a file
    def frame_time(self) -> float | None: ...  # see OpenCVSource.frame_time
    def close(self) -> None: ...


def redact(url: str) -> str:
    """The URL without user and password, for logs, spans and stored rows."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def stall_seconds(fps: float | None) -> float:
    """No frame for this long means the camera stalled: the read timeout that makes the
    capture loop reconnect, or three frame periods at a slow --fps."""
    read_timeout = timeout_ms(READ_TIMEOUT_VARIABLE, DEFAULT_READ_TIMEOUT_MS) / 1000
    return max(read_timeout, 3 / fps) if fps else read_timeout


def timeout_ms(variable: str, default: int) -> int:
    """A timeout in milliseconds from the environment; SourceError naming it when malformed."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise SourceError(f"{variable}={text!r} must be a whole number of milliseconds, >= 1")
    return int(text)


@dataclass
class SyntheticSource:
    """A moving test pattern with the frame number drawn on it; no camera needed."""

    width: int = 1280
    height: int = 720
    fps: float | None = 30.0
    description: str = "synthetic://"
    paced: bool = True
    count: int = 0

    @classmethod
    def from_url(cls, url: str) -> SyntheticSource:
        query = {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
        unknown = set(query) - {"width", "height", "fps"}
        if unknown:
            raise SourceError(f"unknown synthetic:// option(s): {', '.join(sorted(unknown))}")
        try:
            width, height = int(query.get("width", 1280)), int(query.get("height", 720))
            fps = float(query.get("fps", 30))
        except ValueError:
            raise SourceError(f"synthetic:// options must be numbers: {url}") from None
        if not (16 <= width <= 7680 and 16 <= height <= 4320 and 0 < fps <= 240):
            raise SourceError(f"synthetic:// size or fps out of range: {url}")
        return cls(width=width, height=height, fps=fps, description=url)

    def open(self) -> None:
        self.background = self._gradient()

    def read(self) -> np.ndarray | None:
        self.count += 1
        frame = np.roll(self.background, self.count * 8, axis=1)
        cv2.rectangle(frame, (20, 20), (560, 110), (0, 0, 0), thickness=-1)
        cv2.putText(
            frame, f"detektr {self.count:07d}", (30, 90), cv2.FONT_HERSHEY_SIMPLEX, 2,
            (255, 255, 255), 3, cv2.LINE_AA,
        )  # fmt: skip
        return frame

    def frame_time(self) -> float | None:
        return None

    def close(self) -> None:
        pass

    def _gradient(self) -> np.ndarray:
        x = np.linspace(0, 255, self.width, dtype=np.uint8)
        y = np.linspace(0, 255, self.height, dtype=np.uint8)
        blue = np.tile(x, (self.height, 1))
        green = np.tile(y[:, None], (1, self.width))
        red = np.full((self.height, self.width), 96, dtype=np.uint8)
        return np.dstack([blue, green, red])


@dataclass
class OpenCVSource:
    """A stream, file or device read through OpenCV's FFmpeg or V4L2 backend."""

    target: str | int
    description: str
    paced: bool
    fps: float | None = None
    capture: cv2.VideoCapture | None = None
    open_timeout_ms: int = DEFAULT_OPEN_TIMEOUT_MS
    read_timeout_ms: int = DEFAULT_READ_TIMEOUT_MS
    # The stream carries the camera's own timestamps (RTSP, RTMP, MPEG-TS); MJPEG over HTTP
    # does not (FFmpeg makes them up at 25 fps), so there only the arrival time counts.
    timestamped: bool = False

    @classmethod
    def ffmpeg(
        cls, target: str, description: str, paced: bool, timestamped: bool = False
    ) -> OpenCVSource:
        """A stream or file for FFmpeg, with the timeouts the environment asks for."""
        return cls(
            target=target, description=description, paced=paced, timestamped=timestamped,
            open_timeout_ms=timeout_ms(OPEN_TIMEOUT_VARIABLE, DEFAULT_OPEN_TIMEOUT_MS),
            read_timeout_ms=timeout_ms(READ_TIMEOUT_VARIABLE, DEFAULT_READ_TIMEOUT_MS),
        )  # fmt: skip

    def open(self) -> None:
        if isinstance(self.target, int):
            capture = cv2.VideoCapture(self.target)
        else:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self.open_timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, self.read_timeout_ms,
            ]  # fmt: skip
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot open {self.description}")
        reported = capture.get(cv2.CAP_PROP_FPS)
        self.fps = reported if 0 < reported <= 240 else None
        self.capture = capture

    def read(self) -> np.ndarray | None:
        if self.capture is None:
            raise SourceError(f"{self.description} is not open")
        started = time.monotonic()
        ok, frame = self.capture.read()
        if not ok or frame is None:
            if self.paced:  # a file that ends is done, not broken
                return None
            raise SourceError(f"{self.description} stopped delivering frames")
        if self.cut_off(time.monotonic() - started):
            raise SourceError(
                f"{self.description} stopped delivering frames: none within "
                f"{READ_TIMEOUT_VARIABLE} ({self.read_timeout_ms} ms)"
            )
        return frame

    def cut_off(self, blocked: float) -> bool:
        """Whether the read timeout ended this read: then the frame it returned is late.

        OpenCV's interrupt callback stops FFmpeg's wait once the read timeout has passed since
        the read began; FFmpeg then hands over what its threaded decoder still held, frames the
        camera made before it froze (an RTSP camera stopped with SIGSTOP: two, each after
        another full timeout). Stored, they would be new frames seconds late, with a wrong
        capture time; the stall would show only after three timeouts. So such a read is the
        stall. The limit is the timeout itself, no margin: our clock (CLOCK_MONOTONIC, as
        OpenCV's) encloses the read, so a cut-off read always measures at least the timeout,
        and a shorter one had its frame in time.

        No false stall at a low frame rate: whatever the rate, OpenCV ends a read at the
        timeout, so a camera slower than it never gets a frame through anyway (1 fps with an
        800 ms timeout: every read ends at the timeout with stream time 0, never a real
        frame) and needs CAMERA_READ_TIMEOUT_MS above its frame period. stall_seconds()'s
        longer limit for a slow --fps cannot apply here: --fps thins frames after the read,
        which still waits only for the camera's own rate. Nor can frame_time() tell a late
        frame: the held frames carry their true, in-sequence stream times, and MJPEG has none.
        Not for files (paced): a slow disk delays a frame, it does not make it stale; nor
        devices, read through V4L2 without this timeout."""
        live_stream = isinstance(self.target, str) and not self.paced
        return live_stream and blocked >= self.read_timeout_ms / 1000

    def frame_time(self) -> float | None:
        """When the camera made the frame last read, in seconds on the stream's own clock;
        None when the stream has no such clock. FFmpeg hands over the frames it buffered
        while probing a stream all at once: their own times show the camera's real rate."""
        if not self.timestamped or self.capture is None:
            return None
        return float(self.capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def open_source(text: str) -> Source:
    """Build (not yet open) the source a user named; SourceError when it cannot be one or
    when its timeouts are misconfigured, so the capture command refuses it at start-up."""
    scheme = urlsplit(text).scheme.lower()
    if scheme == "synthetic":
        return SyntheticSource.from_url(text)
    if scheme in ("rtsp", "rtsps", "rtmp", "udp", "tcp"):
        return OpenCVSource.ffmpeg(text, description=redact(text), paced=False, timestamped=True)
    if scheme in ("http", "https"):
        return OpenCVSource.ffmpeg(text, description=redact(text), paced=False)
    if text.isdigit():
        return OpenCVSource(target=int(text), description=f"device {text}", paced=False)
    if Path(text).is_file():
        return OpenCVSource.ffmpeg(text, description=text, paced=True)
    raise SourceError(
        f"not a stream URL, device index, video file or synthetic://: {redact(text)!r}"
    )
