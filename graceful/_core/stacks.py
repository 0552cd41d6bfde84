"""Stacks for diagnostics: where a task is suspended, where a thread is stuck.

``Task.print_stack()`` shows only the task's own coroutine frame for a suspended
task, so a ``main`` stuck in the user's code was reported at graceful's own
wrapper. Following the ``cr_await`` chain down to the innermost coroutine gives
the line the user wrote.
"""

from __future__ import annotations

import os
import sys
import traceback
from types import FrameType
from typing import Any


def task_stack(task: Any) -> str:
    """The await chain of a suspended task, outermost first, innermost (the line that
    waits) last; '' for something that is not a task."""
    coro = getattr(task, "get_coro", lambda: None)()
    frames: list[FrameType] = []
    seen = 0
    while coro is not None and seen < 100:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        frame = frame or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
        )
        seen += 1
    if not frames:
        return ""
    lines = [f"Stack for task {task.get_name()!r} (innermost last):"]
    summary = traceback.StackSummary.extract(
        ((f, f.f_lineno) for f in frames), lookup_lines=True, capture_locals=False
    )
    lines.extend(line.rstrip("\n") for line in summary.format())
    return "\n".join(lines)


def thread_stack(ident: int | None) -> str:
    """The current stack of a thread, innermost last; a placeholder if it is gone."""
    frame = sys._current_frames().get(ident or -1)
    if frame is None:
        return "  (no stack: the thread has ended)"
    return stack_from_the_app(frame)


_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # graceful/
_ASYNCIO = os.path.join(os.path.dirname(os.path.abspath(os.__file__)), "asyncio") + os.sep


def _machinery(filename: str) -> bool:
    """Frames every stack of an app starts with: runpy, graceful, asyncio's run loop."""
    return filename.startswith((_OURS, _ASYNCIO, "<frozen ")) or filename.endswith(
        os.sep + "runpy.py"
    )


def stack_from_the_app(frame: FrameType) -> str:
    """The stack that ends in ``frame``, innermost last, from the first frame of the
    app's own code: the outer frames of runpy, graceful and asyncio's loop that every
    stack starts with say nothing about what blocks."""
    summary = traceback.extract_stack(frame)
    start = 0
    while start < len(summary) - 1 and _machinery(summary[start].filename):
        start += 1
    return "".join(traceback.StackSummary.from_list(summary[start:]).format()).rstrip()


def blocking_function(ident: int | None, skip: tuple[str, ...] = ()) -> str:
    """``function (file:line)`` of the innermost frame of a thread outside ``skip``
    (path fragments, e.g. the standard library's asyncio), to name what blocks it."""
    frame = sys._current_frames().get(ident or -1)
    fallback = ""
    while frame is not None:
        code = frame.f_code
        here = f"{code.co_name} ({code.co_filename}:{frame.f_lineno})"
        fallback = fallback or here
        if not any(part in code.co_filename for part in skip):
            return here
        frame = frame.f_back
    return fallback
