"""Reading a running ``crmbridge`` process's JSON log lines as they come."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any


class LogTail:
    """Collects the JSON lines a process writes to stderr, in a thread, for ``wait_for``."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.lines.append(line)

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every logged JSON object whose ``event`` is ``name``, in order."""
        found = []
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            if f'"{name}"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == name:
                found.append(record)
        return found

    def wait_for(self, name: str, *, count: int = 1, timeout_s: float = 120) -> dict[str, Any]:
        """The ``count``-th ``name`` event, waiting for it; fails when the process ends first."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.events(name)
            if len(found) >= count:
                return found[count - 1]
            assert self.process.poll() is None or self._thread.is_alive(), self.text()
            assert time.monotonic() < deadline, f"no {name} logged:\n{self.text()[-4000:]}"
            time.sleep(0.05)

    def text(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def finish(self, timeout_s: float = 60) -> int:
        """Wait for the process to end; its exit code."""
        code = self.process.wait(timeout=timeout_s)
        self._thread.join(timeout=5)
        return code
