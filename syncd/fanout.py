"""Requests to different tools, sent at once: the reads and writes of one item go out together, not in turn.

A pass waits on the network, not on the processor: reading an item's views in three tools one after another costs
three round trips where one would do, and so does writing two mirrors. :func:`each` runs independent calls side
by side on one persistent pool of threads shared by the whole process (threads are made once, so a connector's
per-thread SDK client is made once per thread, not per call) and hands back each call's result or error.

Each call runs in a copy of the caller's context (:mod:`contextvars`): what the caller collects for the audit log
(:func:`syncd.uncertain.recording`) and the log's bound fields reach the calls. Callers keep each connector to one
call at a time (one call per tool), since SDK clients are not thread-safe; a call made from a pool thread runs
its own calls in turn, so no call ever waits on the pool it runs in.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

K = TypeVar("K")
T = TypeVar("T")

WORKERS = 16
"""Threads of the shared pool: enough for every pass thread's two or three tools at once."""

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_inside = threading.local()


def _shared() -> concurrent.futures.ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="syncd-fanout")
        return _pool


def _marked(call: Callable[[], T]) -> Callable[[], T]:
    def run() -> T:
        _inside.active = True
        try:
            return call()
        finally:
            _inside.active = False

    return run


def each(calls: Mapping[K, Callable[[], T]]) -> dict[K, T | Exception]:
    """Run the calls at once; each key's result, or the exception its call raised (BaseException propagates).

    The last call runs in the calling thread, the others on the shared pool. A single call, or calls made from a
    pool thread, run in turn in the calling thread.
    """
    keys = list(calls)
    outcomes: dict[K, T | Exception] = {}
    if len(keys) < 2 or getattr(_inside, "active", False):
        for key in keys:
            outcomes[key] = _outcome(calls[key])
        return outcomes
    pool = _shared()
    futures = {key: pool.submit(contextvars.copy_context().run, _marked(calls[key])) for key in keys[:-1]}
    last = _outcome(calls[keys[-1]])
    for key, future in futures.items():
        try:
            outcomes[key] = future.result()
        except Exception as error:
            outcomes[key] = error
    outcomes[keys[-1]] = last
    return {key: outcomes[key] for key in keys}


def _outcome(call: Callable[[], T]) -> T | Exception:
    try:
        return call()
    except Exception as error:
        return error
