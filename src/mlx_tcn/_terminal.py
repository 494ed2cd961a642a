"""The command line's terminal: a progress bar fed by the training loop's metric dicts, and
Ctrl-C as a request to stop after the current step (twice: abort)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Progress", "once", "stop_on_ctrl_c"]


class Progress:
    """tqdm progress bar fed by the loop's metric dicts."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self.quiet:
            return
        kind = event["event"]
        if kind == "step":
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=event["total_steps"], initial=event["step"] - 1, unit="step",
                                dynamic_ncols=True, file=sys.stderr)  # fmt: skip
            self.bar.update(event["step"] - self.bar.n)
        elif kind == "train" and self.bar is not None:
            self.bar.set_postfix(
                loss=f"{event['loss']:.4g}", samples_s=f"{event['samples_per_s']:.0f}"
            )
        elif kind == "eval":
            msg = f"step {event['step']}: val_loss {event['val_loss']:.4g}"
            if "val_accuracy" in event:
                msg += f", val_accuracy {event['val_accuracy']:.4f}"
            if event.get("best"):
                msg += " (best)"
            self._write(msg)
        elif kind == "member":
            self.close()
            self._write(
                f"training model {event['fold'] + 1} of {event['folds']} (fold {event['fold']})"
            )
        elif kind == "end":
            self.close()

    def _write(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def once(message: str) -> Any:
    """A callback that prints ``message`` at the run's first event, i.e. once the run has
    really started (a resume that fails while loading prints only its error)."""
    done: list[bool] = []

    def callback(event: dict[str, Any]) -> None:
        if not done:
            done.append(True)
            print(message, file=sys.stderr)

    return callback


@contextmanager
def stop_on_ctrl_c() -> Iterator[Callable[[], bool]]:
    """Within the block, the first Ctrl-C only sets the flag that the yielded function
    reports (the loop then saves and stops); a second one aborts."""
    requested: list[bool] = []

    def on_sigint(signum: int, frame: Any) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)
        print(
            "\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)",
            file=sys.stderr,
        )

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)
