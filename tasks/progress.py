"""Progress of long work for whoever shows it (the command line's progress bar), without a
module-level hook: the caller sets a callback for the duration of its call; the work asks for
the current one. Called with (done, total, what just finished)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Progress = Callable[[int, int, str], None]
_current: ContextVar[Progress | None] = ContextVar("baseimage_progress", default=None)


def current_progress() -> Progress | None:
    return _current.get()


@contextmanager
def reporting(callback: Progress) -> Iterator[None]:
    token = _current.set(callback)
    try:
        yield
    finally:
        _current.reset(token)
