"""One process at a time per run folder.

A new run's folder is claimed exclusively (:func:`.runner.claim_run_dir`), but a resume writes
into an existing one: two ``mlx-tcn train --resume`` of the same run (or a resume while the
run is still training) would prune each other's half-written checkpoints and replace the
``metrics.jsonl`` the other is appending to. So whoever writes into a run folder holds an
exclusive ``flock`` on the folder itself (no lock file: the folder's contents stay as they
are). The operating system drops the lock when the process ends, however it ends, so a killed
run never leaves its folder locked.

The lock is re-entrant within a thread: an ensemble's member 0 holds its run's lock while it
trains the other members, and the CLI takes it before it reads the checkpoint to resume, then
``run_training`` takes it again. Another thread of the same process is refused like another
process (each holder has its own descriptor, and ``flock`` locks belong to descriptors).
Where ``fcntl`` does not exist (Windows), there is no lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .checkpoint import CheckpointError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunInUseError", "hold_run"]

logger = logging.getLogger(__name__)

# (device, inode) of a folder and the holding thread -> [descriptor holding its lock, depth]
_HELD: dict[tuple[int, int, int], list[int]] = {}


class RunInUseError(CheckpointError):
    """Another process is writing into this run folder."""


@contextmanager
def hold_run(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` for the ``with`` block.

    Raises:
        RunInUseError: another process holds it (a run training or resuming there).
    """
    if fcntl is None:
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    info = os.fstat(fd)
    key = (info.st_dev, info.st_ino, threading.get_ident())  # another thread: another holder
    if key in _HELD:
        os.close(fd)
        _HELD[key][1] += 1
    else:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # taken
            os.close(fd)
            raise RunInUseError(
                f"{Path(run_dir)} is being written by another process (a run training or "
                "resuming there); wait for it to end, or stop it, then resume"
            ) from None
        except OSError as err:  # a file system without flock: train on, unguarded
            logger.warning("cannot lock %s (%s): another resume of this run would not be "
                           "refused", run_dir, err)  # fmt: skip
        _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            os.close(_HELD.pop(key)[0])  # closing the descriptor releases the lock
