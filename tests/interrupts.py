"""A terminal's Ctrl-C, sent to a training subprocess during its second epoch: shared by
the single-process and the torchrun resume tests."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def ctrl_c_in_second_epoch(proc: subprocess.Popen, run: Path, first_epoch_line: str, settle: float) -> str:
    """Wait for ``first_epoch_line`` on ``proc``'s stderr and for the epoch's last write
    (``curves.png``), then ``settle`` seconds, then SIGINT the process group (``proc``
    must be started with ``start_new_session=True``).  Returns the rest of stderr."""
    for line in proc.stderr:
        if first_epoch_line in line:
            while not (run / "curves.png").exists():
                time.sleep(0.01)
            time.sleep(settle)
            os.killpg(proc.pid, signal.SIGINT)
            break
    return proc.stderr.read()
