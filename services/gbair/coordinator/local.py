"""A coordinator in a child process on a free loopback port, for `gbair demo` and the tests."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CoordinatorStartError(RuntimeError):
    pass


class LocalCoordinator:
    """`gbair serve` with `settings` (plus a fresh token for tenant 'local' unless tokens are given),
    its state in `state_dir`. Use as a context manager; `kill()` is a SIGKILL, `restart()` starts again."""

    def __init__(self, state_dir: Path, settings: dict | None = None, log_path: Path | None = None):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        settings = dict(settings or {})
        settings.setdefault("tokens", [{"token": secrets.token_hex(16), "tenant": "local"}])
        settings.setdefault("listen", f"127.0.0.1:{free_port()}")
        settings.setdefault("state_dir", str(self.state_dir))
        self.settings = settings
        self.token = settings["tokens"][0]["token"]
        self.target = settings["listen"]
        self.config_path = self.state_dir / "coordinator.yaml"
        self.config_path.write_text(yaml.safe_dump(settings))
        self.log_path = log_path or self.state_dir / "coordinator.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> LocalCoordinator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalCoordinator:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("GBAIR_") or k == "GBAIR_DATA_DIR"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gbair.cli", "serve", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env=environment,
            )
        self._wait_until_serving()
        return self

    def restart(self) -> LocalCoordinator:
        return self.start()

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with self._channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.process.poll() is not None:
                    raise CoordinatorStartError(
                        f"the coordinator exited with {self.process.returncode} ({self._last_line()}); see {self.log_path}"
                    )
                try:
                    answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if answer.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    self.kill()
                    raise CoordinatorStartError(f"the coordinator did not start in {START_TIMEOUT_S:.0f} s; see {self.log_path}")
                time.sleep(0.2)

    def _last_line(self) -> str:
        """The log's last line, where a failed start-up leaves its error."""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def _channel(self) -> grpc.Channel:
        """A channel to the child; a TLS coordinator's own certificate is the CA (self-signed, as in tests)."""
        certificate = self.settings.get("tls_cert")
        if certificate is None:
            return grpc.insecure_channel(self.target)
        return grpc.secure_channel(self.target, grpc.ssl_channel_credentials(Path(certificate).read_bytes()))

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
