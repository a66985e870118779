"""Steady client load on the API from a few threads, every request kept in a History."""

import itertools
import threading
import time
from types import TracebackType

from tests.faults.checker import History
from tests.faults.stack import Stack


class SignUpLoad:
    """`clients` threads each signing up about `rate / clients` users a second."""

    def __init__(self, stack: Stack, history: History, rate: float = 20, clients: int = 4):
        self.stack, self.history = stack, history
        self.interval = clients / rate
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> "SignUpLoad":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _client(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.stack.sign_up(self.history, next(self._numbers))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
