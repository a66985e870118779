"""Child processes of a benchmark run: started in their own session, always cleaned up."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Shared with the test suite: the same polling and port helpers serve both.
from tests.support.processes import free_port, redis_answers, stop_process_group, wait_until

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


class Child:
    """One process (and everything it forks) with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if name.startswith("load") else self._log,
            stderr=self._log,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 20) -> None:
        stop_process_group(self.popen, timeout)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log.close()


class Children:
    """Every process the run started; `stop_all` ends those still running."""

    def __init__(self) -> None:
        self.log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
        self._children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env, self.log_dir)
        self._children.append(child)
        return child

    def stop(self, child: Child, timeout: float = 20) -> None:
        child.stop(timeout)
        if child in self._children:
            self._children.remove(child)

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float) -> str:
        """Run a process to completion and return its stdout; it must exit with 0."""
        child = self.start(name, argv, env)
        try:
            assert child.popen.stdout is not None
            out, _ = child.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{name} did not finish in {timeout:.0f}s") from exc
        finally:
            self.stop(child, timeout=5)
        if child.popen.returncode != 0:
            raise RuntimeError(f"{name} exited {child.popen.returncode}:\n{child.log_tail()}")
        return out.decode()

    def stop_all(self) -> None:
        for child in reversed(self._children):
            child.stop(timeout=10)
        self._children.clear()

    def remove_logs(self) -> None:
        shutil.rmtree(self.log_dir, ignore_errors=True)


class PrivateRedis:
    """A throwaway redis-server (no persistence) on a free port, to stop at will."""

    def __init__(self, children: Children) -> None:
        self._children = children
        self.port = free_port()
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            shutil.which("redis-server") or "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self._children.log_dir)),
        ]
        self.child = self._children.start(f"redis-{self.port}", argv, dict(os.environ))
        wait_until(self._answers, 10, what="private redis-server to answer")

    def stop(self) -> None:
        if self.child is not None:
            self._children.stop(self.child)
            self.child = None

    def _answers(self) -> bool:
        return redis_answers(self.port)
