"""The local stack as real processes: TikTok simulator, local-bigquery and the gunicorn service.

Used by ``make demo``, the integration tests of the container command and the benchmark.
Each piece is the same program that runs in production or in tests; only endpoints differ.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def dockerfile_command() -> list[str]:
    """The CMD of the Dockerfile: tests run exactly what the image runs."""
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    if not match:
        raise RuntimeError("Dockerfile has no exec-form CMD")
    import json

    return json.loads(match.group(1))


class Process:
    """A child process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("wb")  # fresh per start: READY lines of old runs must not count
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def describe_failure(self) -> str:
        tail = self.log_path.read_text(errors="replace")[-2000:]
        return f"{shlex.join(self.proc.args)} exited; last output:\n{tail}"


class SimulatorProcess(Process):
    """``python -m tiktok_simulator`` on a free port; ready when it prints its READY line."""

    def __init__(self, log_path: Path, *args: str) -> None:
        super().__init__([sys.executable, "-m", "tiktok_simulator", "--port", "0", *args], log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("READY "):
                    self.base_url = line.split()[1]
                    self.control_url = self.base_url.split("/open_api/")[0]
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(self.describe_failure())
            time.sleep(0.05)
        raise RuntimeError("the TikTok simulator did not start within 30 s")


class ServiceProcess(Process):
    """The Dockerfile's gunicorn command, run from the project's virtualenv."""

    def __init__(self, log_path: Path, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = dockerfile_command()
        command[0] = str(Path(sys.executable).with_name(command[0]))  # gunicorn of this venv
        full_env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        super().__init__(command, log_path, full_env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.describe_failure())
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("the service did not answer /health within 30 s")
