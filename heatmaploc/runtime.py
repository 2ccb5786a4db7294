"""Process-wide torch settings, borrowed and given back.

Training and the benchmark set the number of CPU threads and seed torch's global
random generator (which dropout and weight initialization draw from); a library call
must not leave either changed for its caller, so they run inside :func:`torch_session`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


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
