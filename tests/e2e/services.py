"""Services that tests take down on purpose: a Redis server of their own, a TCP proxy in
front of PostgreSQL or RabbitMQ that can be unplugged (an outage without stopping the shared
server), and a RabbitMQ virtual host of a test's own on the shared local RabbitMQ."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real redis-server on a free port with an append-only file, as a broker should run:
    restarted, it comes back with the queued messages."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SHUTDOWN: the append-only file is complete
            self.process.wait(30)
            self.process = None


class TCPProxy:
    """Forwards 127.0.0.1:port to a target; `unplug()` cuts every connection and refuses new
    ones until `plug()`. While `lose_answers` is set, requests still reach the target but the
    connection is cut when its answer comes: the server did the work, the client never hears."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.sockets: set[socket.socket] = set()
        self.lose_answers = threading.Event()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.plug()

    def plug(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._serve, args=(listener,), daemon=True).start()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # unplugged: the listener was closed
                return
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)  # the 5 s were for connecting: an idle connection stays up
        with self.lock:
            self.sockets.update((client, upstream))
        for source, sink, answers in ((client, upstream, False), (upstream, client, True)):
            threading.Thread(target=self._pipe, args=(source, sink, answers), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self.lose_answers.is_set():
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def unplug(self) -> None:
        if self.listener is not None:
            # shutdown() stops the listening and wakes the blocked accept(); close() alone
            # would leave the port accepting until accept() returned.
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()  # new connections are refused
            self.listener = None
        with self.lock:
            sockets, self.sockets = self.sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.unplug()


class Blackhole:
    """A tracing backend that hangs: accepts connections, reads nothing, answers nothing."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.held: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _hold(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for connection in self.held:
            connection.close()


class RabbitVhost:
    """A virtual host of its own on the local RabbitMQ (127.0.0.1:5672, guest/guest), made
    with rabbitmqctl and deleted with everything in it: queues never leak between tests."""

    def __init__(self) -> None:
        self.name = f"detektr_test_{uuid.uuid4().hex[:12]}"

    def url(self, port: int = 5672) -> str:
        return f"amqp://guest:guest@127.0.0.1:{port}/{self.name}"

    def __enter__(self) -> RabbitVhost:
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self

    def __exit__(self, *exc: object) -> None:
        rabbitmqctl("delete_vhost", self.name)

    def messages(self) -> dict[str, int]:
        """Messages in each queue, ready and unacknowledged."""
        listed = rabbitmqctl("list_queues", "-p", self.name, "--no-table-headers", "name",
                             "messages")  # fmt: skip
        return {
            name: int(count)
            for name, count in (line.split("\t") for line in listed.splitlines() if "\t" in line)
        }


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout
