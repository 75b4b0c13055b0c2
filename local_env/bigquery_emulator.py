"""A real BigQuery API on 127.0.0.1: install and run the ``local-bigquery`` emulator.

Tests and the local demo talk to this server through the official ``google-cloud-bigquery``
client, exactly as production talks to BigQuery; only the endpoint and credentials differ.

``local-bigquery`` needs Python 3.13 while the app may run on 3.11+, so it lives in a
virtualenv of its own (``.venv-bq``) and runs as a subprocess. DuckDB (its engine) cannot
download extensions offline, so ``install`` also imports them once from the pinned
``duckdb-extension-*`` wheels into ``$HOME/.duckdb``; the server must run with that same HOME.
Keep every pin at ``==``: duckdb 2.x (local-bigquery 0.4) breaks offline.

Command line::

    python -m local_env.bigquery_emulator install          # idempotent, fast when done
    python -m local_env.bigquery_emulator serve --port 9050 --data-dir .local/bigquery
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
BQ_VENV = ROOT / ".venv-bq"
STAMP = BQ_VENV / ".installed"
DEFAULT_DATA_DIR = ROOT / ".local" / "bigquery"
DEFAULT_PROJECT = "local-project"

DUCKDB_VERSION = "1.5.5"
EXTENSIONS = ("icu", "json", "parquet", "ducklake", "spatial")
PINS = (
    "local-bigquery==0.3.2",
    f"duckdb=={DUCKDB_VERSION}",
    f"duckdb-extensions=={DUCKDB_VERSION}",
    *(f"duckdb-extension-{name}=={DUCKDB_VERSION}" for name in EXTENSIONS),
)
_IMPORT_EXTENSIONS = (
    "from duckdb_extensions import import_extension\n"
    f"for name in {EXTENSIONS!r}:\n"
    "    import_extension(name)\n"
)
MISSING_PYTHON = (
    "local-bigquery needs Python 3.13: install it (`pyenv install 3.13`, or a python3.13 "
    "package) so that `python3.13` is on PATH or under $(pyenv root)/versions/3.13.*"
)


# --------------------------------------------------------------------------- install


def _is_python313(candidate: str | os.PathLike[str]) -> bool:
    """Run the candidate: a pyenv shim can exist on PATH and still refuse to start."""
    try:
        out = subprocess.run(
            [os.fspath(candidate), "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"versions/(\d+)\.(\d+)\.(\d+)", path)
    return tuple(int(part) for part in match.groups()) if match else (0,)


def find_python313() -> str | None:
    """``python3.13`` on PATH, else the newest pyenv 3.13.x; ``None`` when there is none."""
    candidates: list[str] = []
    if on_path := shutil.which("python3.13"):
        candidates.append(on_path)
    roots: list[str] = []
    if pyenv := shutil.which("pyenv"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                roots.append(out.stdout.strip())
    roots.append(os.path.expanduser("~/.pyenv"))
    for root in roots:
        found = glob.glob(os.path.join(root, "versions", "3.13.*", "bin", "python3"))
        candidates += sorted(found, key=_version_key, reverse=True)
    return next((c for c in candidates if _is_python313(c)), None)


def _extensions_present() -> bool:
    base = Path.home() / ".duckdb" / "extensions" / f"v{DUCKDB_VERSION}"
    return all(any(base.glob(f"*/{name}.duckdb_extension")) for name in EXTENSIONS)


def server_executable() -> Path:
    return BQ_VENV / "bin" / "local-bigquery"


def is_installed() -> bool:
    """True when the pinned set and the offline DuckDB extensions are in place."""
    try:
        stamp = STAMP.read_text()
    except OSError:
        return False
    return stamp == "\n".join(PINS) and server_executable().exists() and _extensions_present()


def _run(what: str, command: list[str]) -> None:
    """Run an install step; on failure exit with one line (the tool printed its own details)."""
    if subprocess.run(command, check=False).returncode != 0:
        raise SystemExit(f"local-bigquery install failed: {what} ({command[0]})")


def install(*, quiet: bool = True) -> Path:
    """Create ``.venv-bq`` with the pinned emulator; a no-op (a few ms) when already done.

    Raises ``SystemExit`` with one line saying what to install when Python 3.13 is missing.
    A file lock keeps two concurrent installs (two test runs, ``make -j``) from colliding.
    """
    if is_installed():
        return server_executable()
    BQ_VENV.parent.mkdir(parents=True, exist_ok=True)
    lock_path = BQ_VENV.parent / ".venv-bq.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed():
            return server_executable()
        python = BQ_VENV / "bin" / "python"
        if not _is_python313(python):
            interpreter = find_python313()
            if interpreter is None:
                raise SystemExit(MISSING_PYTHON)
            shutil.rmtree(BQ_VENV, ignore_errors=True)
            _run("creating .venv-bq", [interpreter, "-m", "venv", os.fspath(BQ_VENV)])
        pip = [os.fspath(python), "-m", "pip", "install", "--disable-pip-version-check"]
        _run("pip install of the pinned emulator", [*pip, *(["-qq"] if quiet else []), *PINS])
        _run("offline import of DuckDB extensions", [os.fspath(python), "-c", _IMPORT_EXTENSIONS])
        STAMP.write_text("\n".join(PINS))
    return server_executable()


# --------------------------------------------------------------------------- server


def free_port() -> int:
    """A port the kernel says is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class PortInUseError(RuntimeError):
    """The port asked for (or picked) is taken by another process."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the server if the process that started it dies (no orphans on kill -9)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalBigQuery:
    """One ``local-bigquery serve`` subprocess on 127.0.0.1.

    ``port=0`` / ``grpc_port=0`` pick free ports once, at construction, so ``restart()``
    keeps the same ``endpoint``. Data persists in ``data_dir`` across restarts; the server
    log is ``data_dir/local-bigquery.log``. Use as a context manager or ``start()``/``stop()``.
    The server is tied to the thread that started it (Linux PDEATHSIG): start it from a thread
    that lives as long as the server should.
    """

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        port: int = 0,
        grpc_port: int = 0,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        nice: int = 0,
    ) -> None:
        """``nice``: the server's (and its engine threads') scheduling niceness; the bench
        gives it 10 so the emulator's work, which BigQuery does on its own machines in
        production, does not take the CPU from the service it measures."""
        self.project = project
        self.nice = nice
        self.data_dir = Path(data_dir).resolve()
        self._auto_ports = not (port and grpc_port)
        self.port = port or free_port()
        self.grpc_port = grpc_port or free_port()
        while self.grpc_port == self.port:
            self.grpc_port = free_port()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.data_dir / "local-bigquery.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _child_setup(self) -> None:  # pragma: no cover - runs in the child before exec
        _die_with_parent()
        if self.nice:
            os.nice(self.nice)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> LocalBigQuery:
        """Launch the server and return once it answers the datasets list (about 2 s).

        Auto-picked ports that were taken in the meantime are picked again (up to 3 tries).
        """
        for attempt in range(3):
            try:
                return self._start_once()
            except PortInUseError:
                if not self._auto_ports or attempt == 2:
                    raise
                self.port, self.grpc_port = free_port(), free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> LocalBigQuery:
        with self._lock:
            if self.running:
                return self
            executable = server_executable()
            if not executable.exists():
                raise RuntimeError(
                    f"{executable} is missing: run `python -m local_env.bigquery_emulator install`"
                )
            for port in (self.port, self.grpc_port):
                if not port_is_free(port):  # else readiness could answer from another server
                    raise PortInUseError(f"127.0.0.1:{port} is already in use")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            command = [
                os.fspath(executable),
                "serve",
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--grpc-port", str(self.grpc_port),
                "--project", self.project,
                "--data-dir", os.fspath(self.data_dir),
            ]  # fmt: skip
            with open(self.log_path, "ab") as log:
                self._process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=self._child_setup if sys.platform == "linux" else None,
                )
            atexit.register(self.stop)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        url = f"{self.endpoint}/bigquery/v2/projects/{self.project}/datasets"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise RuntimeError(f"local-bigquery exited ({code}) at start:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"local-bigquery not ready on {self.endpoint} after {self.startup_timeout:.0f} s:\n"
            f"{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM, wait ``stop_timeout`` seconds, then SIGKILL. Safe to call twice."""
        with self._lock:
            process, self._process = self._process, None
            atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=self.stop_timeout)

    def restart(self, data_dir: Path | str | None = None) -> LocalBigQuery:
        """Stop and start on the same ports: on the same data (what a crashed warehouse looks
        like), or on ``data_dir`` (a fresh warehouse at the same endpoint; the emulator slows
        down as its catalog ages, so long test sessions renew it)."""
        self.stop()
        if data_dir is not None:
            self.data_dir = Path(data_dir).resolve()
            self.log_path = self.data_dir / "local-bigquery.log"
        return self.start()

    def __enter__(self) -> LocalBigQuery:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --------------------------------------------------------------------------- CLI


def _serve(args: argparse.Namespace) -> int:
    install()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = LocalBigQuery(args.project, args.data_dir, args.port, args.grpc_port)
    with server:
        print(f"READY {server.endpoint} project={server.project} log={server.log_path}", flush=True)
        while not stop.wait(0.5):
            if not server.running:
                print(f"local-bigquery exited; see {server.log_path}", file=sys.stderr)
                return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_env.bigquery_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    install_cmd = commands.add_parser("install", help="create .venv-bq (idempotent)")
    install_cmd.add_argument("--verbose", action="store_true")
    serve = commands.add_parser("serve", help="run the emulator until SIGTERM")
    serve.add_argument("--port", type=int, default=9050)
    serve.add_argument("--grpc-port", type=int, default=0)
    serve.add_argument("--project", default=DEFAULT_PROJECT)
    serve.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    if args.command == "install":
        already = is_installed()
        install(quiet=not args.verbose)
        if not already:
            print(f"local-bigquery installed in {BQ_VENV}")
        return 0
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
