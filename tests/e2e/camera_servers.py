"""Cameras for tests: a real RTSP server (GStreamer), an MJPEG-over-HTTP server that can stall,
and video files written with OpenCV.

Both servers bind to 127.0.0.1 on a port the kernel picks, so parallel runs never collide.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from subprocess import PIPE, Popen, TimeoutExpired
from typing import IO, Any

import cv2
import numpy as np
import pytest

# Debian's interpreter, not the virtualenv's: the GStreamer bindings (python3-gi) live there.
SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "run scripts/install-rtsp.sh (as root) to install GStreamer's RTSP server"

# Run by SYSTEM_PYTHON: serves the pipeline in argv[1] at rtsp://127.0.0.1:<port>/camera and
# prints the port once it listens. Each client gets its own pipeline, as a camera starts a new
# encoder session (so a key frame first) for every viewer.
RTSP_SERVER = """
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer

Gst.init(None)
try:  # the server builds it only when a client comes: find a missing element now
    Gst.parse_launch(sys.argv[1])
except GLib.Error as error:
    sys.exit("cannot build the pipeline: " + error.message)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service("0")
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch("( " + sys.argv[1] + " )")
server.get_mount_points().add_factory("/camera", factory)
if server.attach(None) == 0:
    sys.exit("cannot attach the RTSP server")
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
"""

RTSP_PIPELINE = (
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
    "framerate={fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
    "! rtph264pay name=pay0 pt=96"
)

BOUNDARY = "detektrframe"


def test_pattern(number: int, width: int, height: int) -> np.ndarray:
    """A BGR frame unlike the one before: a bar that moves, and the frame number."""
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, :, 1] = np.linspace(0, 200, width, dtype=np.uint8)
    x = (number * 7) % max(1, width - 12)
    frame[:, x : x + 12] = (255, 255, 255)
    cv2.putText(frame, f"{number:05d}", (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1,
                (0, 0, 255), 2)  # fmt: skip
    return frame


test_pattern.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test for pytest


def write_video(path: Path, frames: int, width: int = 320, height: int = 240,
                fps: float = 15.0, codec: str = "mp4v") -> Path:  # fmt: skip
    """Write `frames` frames of the test pattern to `path` (.mp4 for mp4v, .avi for MJPG)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {codec} to {path}")
    for number in range(frames):
        writer.write(test_pattern(number, width, height))
    writer.release()
    return path


class RTSPCamera:
    """GStreamer's RTSP server as a child process: `with RTSPCamera() as camera: camera.url`."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        self.pipeline = RTSP_PIPELINE.format(width=width, height=height, fps=fps)
        self.process: Popen[str] | None = None
        self.errors: IO[str] | None = None
        self.url = ""

    def __enter__(self) -> RTSPCamera:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self.errors is not None:
            self.errors.close()

    def start(self, timeout: float = 30) -> None:
        if not Path(SYSTEM_PYTHON).exists():
            pytest.fail(f"{SYSTEM_PYTHON} not found: {INSTALL_HINT}")
        # stderr to a file, not a pipe nobody reads: GStreamer's warnings must never block it.
        self.errors = tempfile.TemporaryFile("w+")
        self.process = Popen(
            [SYSTEM_PYTHON, "-c", RTSP_SERVER, self.pipeline],
            stdout=PIPE, stderr=self.errors, text=True,
        )  # fmt: skip
        port = self.read_port(timeout)
        self.url = f"rtsp://127.0.0.1:{port}/camera"

    def read_port(self, timeout: float) -> int:
        assert self.process is not None and self.process.stdout is not None
        stdout, lines = self.process.stdout, []
        reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if lines and lines[0].strip().isdigit():
            return int(lines[0])  # printed after attach(): the socket already listens
        self.stop()
        pytest.fail(f"the RTSP server did not start; {INSTALL_HINT}\n{self.output()[-3000:]}")

    def output(self) -> str:
        """What the server wrote to stderr (GStreamer's warnings, a traceback)."""
        if self.errors is None or self.errors.closed:
            return ""
        self.errors.seek(0)
        return self.errors.read()

    def freeze(self) -> None:
        """Stop the server process dead (SIGSTOP): its sockets stay open and nothing flows,
        as with a camera whose firmware hung."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()  # a frozen process never handles SIGTERM
            self.process.terminate()
            try:
                self.process.wait(10)
            except TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


class MJPEGCamera:
    """An IP camera's MJPEG stream (`multipart/x-mixed-replace`) at `url`, paced at `fps`.

    `stall()` stops sending frames on every connection, new ones included, without closing
    any: what a hung camera or a dead network path looks like to a reader. `resume()` ends it.
    """

    def __init__(self, width: int = 320, height: int = 240, fps: float = 15.0) -> None:
        self.width, self.height, self.period = width, height, 1 / fps
        self.frames_sent = 0
        self.connections = 0
        self.lock = threading.Lock()
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = threading.Event()
        self.server = CameraHTTPServer(("127.0.0.1", 0), MJPEGHandler, camera=self)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> MJPEGCamera:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.spawn(self.server.serve_forever)

    def stop(self) -> None:
        """Hang up on every client and free the port; safe to call twice."""
        self.closed.set()
        self.flowing.set()
        if self.threads:  # shutdown() waits for serve_forever(), forever if it never ran
            self.server.shutdown()
        self.server.server_close()
        for thread in self.threads:
            thread.join(10)

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def stall_after(self, frames: int, resume_after_connections: int) -> None:
        """Stall once `frames` frames went out; resume when the reader has connected again
        `resume_after_connections` times: it noticed the stall and kept trying."""

        def script() -> None:
            if not self.wait(lambda: self.frames_sent >= frames):
                return
            self.stall()
            seen = self.connections
            self.wait(lambda: self.connections >= seen + resume_after_connections)
            self.resume()

        self.spawn(script)

    def wait(self, condition: Callable[[], bool]) -> bool:
        while not condition():
            if self.closed.wait(0.05):
                return False
        return True

    def spawn(self, target: Callable[[], Any]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stream(self, out: BufferedIOBase) -> None:
        """Send frames to one client until it leaves or the camera stops."""
        with self.lock:
            self.connections += 1
        due = time.monotonic()
        while not self.closed.is_set():
            if not self.flowing.is_set():
                self.flowing.wait(0.1)
                due = time.monotonic()
                continue
            jpeg = self.jpeg(self.frames_sent)
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
            try:
                out.write(f"{head}\r\n".encode() + jpeg + b"\r\n")
                out.flush()
            except OSError:  # the reader hung up
                return
            with self.lock:
                self.frames_sent += 1
            due += self.period
            self.closed.wait(max(0.0, due - time.monotonic()))

    def jpeg(self, number: int) -> bytes:
        ok, encoded = cv2.imencode(".jpg", test_pattern(number, self.width, self.height))
        assert ok
        return bytes(encoded.tobytes())


class CameraHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a client that never hangs up must not keep the test alive

    def __init__(self, address: tuple[str, int], handler: type[MJPEGHandler],
                 camera: MJPEGCamera) -> None:  # fmt: skip
        self.camera = camera
        super().__init__(address, handler)


class MJPEGHandler(BaseHTTPRequestHandler):
    server: CameraHTTPServer

    def do_GET(self) -> None:  # the name http.server dispatches to
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.server.camera.stream(self.wfile)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request on stderr is noise in test output
