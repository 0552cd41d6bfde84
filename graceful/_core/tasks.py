"""The app's tasks: which ones exist, which ones died of an exception nobody looked at.

asyncio reports a task's unretrieved exception only when the task is garbage
collected. A background task kept in an attribute (``self._poller =
create_task(...)``) is never collected while the service runs, so it dies in
silence and the service runs on half-dead. graceful installs a task factory
that adds one done-callback per task; when a task ends with an exception, the
callback looks again a few loop iterations later (time for an ``await``,
``gather`` or ``wait`` that was already waiting for it to take the result) and
reports it if nobody did: logged once with its traceback, and with
``--task-errors shutdown`` the shutdown starts with exit code 1. The loop's
exception handler catches the garbage-collected case for tasks made while the
factory was not ours (an app that sets its own task factory).

The factory also records the tasks the app made, so that a run inside somebody
else's loop (``graceful.testing``) cancels the app's tasks and nothing else.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("graceful")

LOOK_AGAIN_AFTER = 3
"""Loop iterations between a task's end and the check that its exception was taken:
a direct ``await`` takes it in the first, ``asyncio.wait`` + ``.result()`` in the second."""

in_app: contextvars.ContextVar[bool] = contextvars.ContextVar("graceful_in_app", default=False)
"""Set in the context ``main`` runs in, so every task it starts (and theirs) carries it."""


class TaskWatch:
    def __init__(
        self,
        on_error: Callable[[asyncio.Task[Any], BaseException], None],
        stopping: Callable[[], bool] = lambda: False,
        *,
        record: bool = False,
    ) -> None:
        self.on_error = on_error
        self.stopping = stopping
        # The app's tasks, for a run in somebody else's loop (graceful.testing) only:
        # a WeakSet costs a weak reference per task, and a server makes a task per
        # request (measured with uvicorn: the factory's whole cost is about 1 % of its
        # requests per second once this is off).
        self.tasks: weakref.WeakSet[asyncio.Task[Any]] | None = (
            weakref.WeakSet() if record else None
        )
        self.exempt: asyncio.Future[Any] | None = None  # main: its result is graceful's
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_factory: Any = None
        self._previous_handler: Any = None
        self._factory: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous_factory = loop.get_task_factory()
        self._previous_handler = loop.get_exception_handler()
        self._factory = self._make_factory()
        loop.set_task_factory(self._factory)
        loop.set_exception_handler(self._exception_handler)

    def uninstall(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if loop.get_task_factory() is self._factory:
            loop.set_task_factory(self._previous_factory)
        if loop.get_exception_handler() == self._exception_handler:  # (bound: equal)
            loop.set_exception_handler(self._previous_handler)
        self._loop = None

    def _make_factory(self) -> Any:
        """The task factory: it runs for every task, and a server makes one per request
        (aiohttp), so what it needs is bound once, here. The done-callback runs in a
        context of its own: ``add_done_callback`` would copy the current one per task."""
        previous, tasks, done = self._previous_factory, self.tasks, self._done
        make_task, app_task, context = asyncio.Task, in_app.get, contextvars.Context()

        def factory(
            loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
        ) -> asyncio.Task[Any]:
            if previous is not None:
                task: asyncio.Task[Any] = previous(loop, coro, **kwargs)
            else:
                task = make_task(coro, loop=loop, **kwargs)
            if app_task():
                if tasks is not None:
                    tasks.add(task)
                task.add_done_callback(done, context=context)
            return task

        return factory

    def _done(self, task: asyncio.Task[Any]) -> None:
        # Cheapest test first: almost every task ends without an exception.
        if not getattr(task, "_log_traceback", False) or task is self.exempt:
            return
        self._look_again(task, LOOK_AGAIN_AFTER)

    def _look_again(self, task: asyncio.Task[Any], hops: int) -> None:
        if not getattr(task, "_log_traceback", False):
            return  # somebody took the exception
        if hops:
            task.get_loop().call_soon(self._look_again, task, hops - 1)
            return
        error = task.exception()  # takes it: asyncio will not report it again at collection
        if error is not None:
            self.on_error(task, error)

    def _exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        task = context.get("future") or context.get("task")
        error = context.get("exception")
        if (
            isinstance(task, asyncio.Task)
            and isinstance(error, BaseException)
            and task is not self.exempt
            and "never retrieved" in str(context.get("message", ""))
        ):
            self.on_error(task, error)
            return
        if isinstance(error, asyncio.CancelledError) and self.stopping():
            # A library tripping over the cancellation graceful did on purpose (seen:
            # asyncio's streams calling exception() on hypercorn's cancelled connection
            # task): expected during a stop, so not a traceback for the user.
            log.debug("during the stop: %s (CancelledError)", context.get("message"))
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)
