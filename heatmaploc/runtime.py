"""Process-wide settings, borrowed and given back: torch's threads and random state,
and the Ctrl-C handler of a training loop.

Training and the benchmark set the number of CPU threads and seed torch's global
random generator (which dropout and weight initialization draw from); a library call
must not leave either changed for its caller, so they run inside :func:`torch_session`.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import torch

log = logging.getLogger(__name__)


@contextmanager
def torch_session(threads: int | None = None) -> Iterator[None]:
    """Run the block with ``threads`` CPU threads (unchanged when None) and a forked
    global random state (CPU and every CUDA device); both are restored on exit."""
    previous = torch.get_num_threads()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


class StepInterrupt:
    """Ctrl-C (SIGINT) deferred to the end of the current optimizer step.

    Inside ``with StepInterrupt() as stop:`` a first SIGINT only sets ``stop.requested``;
    the training loop checks it after each step and saves a checkpoint that is exactly
    the state after that step (weights, optimizer, random generator), so resuming is
    bit-identical to never stopping.  A second SIGINT (more than a second later: under
    torchrun each worker gets the terminal's Ctrl-C and torchrun's copy of it) raises at
    once.  Outside the main
    thread (where Python cannot install signal handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._first = 0.0
        self._previous = None

    def _handle(self, signum, frame) -> None:
        now = time.monotonic()
        if self.requested and now - self._first > 1.0:
            raise KeyboardInterrupt
        if self.requested:  # torchrun forwards the Ctrl-C its workers already got from the terminal
            return
        self.requested, self._first = True, now
        log.warning("interrupt: stopping after the current step (press Ctrl-C again to stop at once)")

    def __enter__(self) -> "StepInterrupt":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def ignore_interrupt(_worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: workers leave Ctrl-C to the main process (which
    stops after its current step and still needs the batch a worker is preparing)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
