"""Start and stop a real ``triggergate run`` process for integration tests (stopped by PID)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    manifests: list[Path]
    state_dir: Path
    health_port: int
    secrets_dir: Path | None = None
    extra_args: list[str] = field(default_factory=list)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        cmd = [
            sys.executable,
            "-m",
            "gateway",
            "run",
            *map(str, self.manifests),
            "--state-dir",
            str(self.state_dir),
            "--host",
            "127.0.0.1",
            "--log-format",
            "json",
            *self.extra_args,
        ]
        if self.secrets_dir is not None:
            cmd += ["--secrets-dir", str(self.secrets_dir)]
        self.log_path = self.log_path or self.state_dir.parent / f"gateway-{self.state_dir.name}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.health_port}/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"gateway did not become healthy in {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self._log.close()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if hasattr(self, "_log"):
            self._log.close()
