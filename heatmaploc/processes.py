"""CPU-bound numpy/scipy work (simulation, the physics refinement) on single-threaded
BLAS, in this process or in a pool of processes.

Each task is many small array operations (least-squares problems of a few thousand
rows, sparse LU solves): a threaded BLAS gains little on them and, beside a second
worker or a training run, makes the processes compete for the same cores (measured:
``heatmaploc simulate --workers 2`` of finite-difference media took 2.5x as long as one
worker when each forked worker ran two BLAS threads).  One thread everywhere also makes
the results independent of the worker count to the last bit (a threaded sparse LU
rounds differently).  Pools are spawned unless the caller asks for a fork: a forked
child inherits the parent's started BLAS threads (limited again as it starts) and
torch's, which are not safe to use after a fork.
"""
from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

from threadpoolctl import threadpool_limits

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS and OpenMP limited to one thread in this process for the ``with`` block."""
    with threadpool_limits(limits=1):
        yield


def _one_thread() -> None:
    threadpool_limits(limits=1)


@contextmanager
def single_threaded_pool(workers: int, fork: bool = False) -> Iterator[ProcessPoolExecutor]:
    """A :class:`ProcessPoolExecutor` of ``workers`` processes whose BLAS runs on one
    thread; submit inside the ``with`` block.  Spawned by default (workers start on
    demand and inherit the environment of that moment, restored on exit); ``fork``:
    forked, each worker limiting its inherited BLAS to one thread as it starts -- a
    second faster to start per worker, for callers that have not started torch."""
    if fork:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=_one_thread) as pool:
            yield pool
        return
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update({k: "1" for k in THREAD_VARIABLES})
    try:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            yield pool
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def bounded_map(pool: Executor, fn: Callable, items: Iterable, ahead: int) -> Iterator:
    """``fn(item)`` of each of ``items`` on ``pool``, yielded in order, with at most
    ``ahead`` items submitted and not yet yielded: unlike ``pool.map``, which submits
    every item at once, the inputs and results held stay bounded whatever their
    number (thousands of windows of a large image)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
