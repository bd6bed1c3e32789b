"""A small progress bar for long management commands (no dependency, safe for non-TTY output)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, *, stream=None, width: int = 30):
        self.label, self.total, self.width = label, max(total, 0), width
        self.stream = stream or sys.stdout
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def advance(self, step: int = 1) -> None:
        self.done = min(self.total, self.done + step) if self.total else self.done + step
        now = time.monotonic()
        if self.tty and (now - self._last_draw > 0.1 or self.done >= self.total):
            self._draw()
            self._last_draw = now

    def _draw(self) -> None:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * self.width)
        bar = "█" * filled + "·" * (self.width - filled)
        self.stream.write(f"\r{self.label:<28} [{bar}] {self.done}/{self.total}")
        self.stream.flush()

    def finish(self, note: str = "") -> None:
        elapsed = time.monotonic() - self.started
        if self.tty:
            self._draw()
            self.stream.write("\n")
        self.stream.write(f"{self.label}: {self.done} done in {elapsed:.1f}s{(' — ' + note) if note else ''}\n")
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.finish()
        return False
