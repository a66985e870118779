"""Child processes of a benchmark run: started in their own session, always cleaned up.

Each is the tests' own `Process` (tests/support/runner.py), with its log in the run's
log directory; a load generator's stdout is a pipe, for its JSON report.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.runner import Process


class Children:
    """Every process the run started; `stop_all` ends those still running."""

    def __init__(self) -> None:
        self.log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
        self._children: list[Process] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        child = Process(
            name,
            argv,
            env,
            log_path=self.log_dir / f"{name}.log",
            capture_stdout=name.startswith("load"),
        )
        self._children.append(child)
        return child

    def stop(self, child: Process, timeout: float = 20) -> None:
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
