"""Copy a finished run so that resuming the copy continues it at a tenth of its rate.

The adding problem's paper preset trains at a constant rate; at the end of its 10 epochs a
single evaluation scatters by up to 10x from one evaluation to the next. To see the level
the weights have reached under that noise, continue the run for one more epoch at
``lr / 10``: this script copies ``RUN`` to ``OUT`` and switches the copy's schedule (in
``OUT/train_config.json`` and in its latest checkpoint) to ``step`` with the cut at the
epoch the run has reached, so a resume of the copy starts at the lower rate. ``RUN`` is not
touched. Then resume the copy, one epoch more::

    python scripts/rate_cut_copy.py runs/adding /tmp/adding-cut
    mlx-tcn train --resume /tmp/adding-cut --epochs 11
    mlx-tcn evaluate /tmp/adding-cut --split val --which latest

(A run made through ``scripts/init_comparison.py`` is resumed through it, with the same
environment, e.g. ``SAME_DRAW=3 DATA_ORDER=reference python scripts/init_comparison.py train
--resume /tmp/cut --epochs 11 --max-steps 17193``.) docs/RESULTS.md has what it gave.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run folder to copy (left unchanged)")
    parser.add_argument("out", type=Path, help="the copy's folder (must not exist)")
    parser.add_argument("--factor", type=float, default=0.1, help="the cut (default 0.1)")
    args = parser.parse_args()
    if not 0 < args.factor <= 1:
        parser.error(f"--factor must be in (0, 1], got {args.factor}")
    if args.out.exists():
        parser.error(f"{args.out} exists")
    index = json.loads((args.run / "checkpoints" / "index.json").read_text())
    latest = args.run / "checkpoints" / index["latest"]
    trainer = json.loads((latest / "trainer_state.json").read_text())
    epoch = trainer["loop"]["epoch"]
    if trainer["loop"]["batch_in_epoch"]:
        parser.error(f"{latest} is inside epoch {epoch}; the cut needs an epoch's end")
    shutil.copytree(args.run, args.out)
    for path in (args.out / "train_config.json",
                 args.out / "checkpoints" / index["latest"] / "train_config.json"):  # fmt: skip
        cfg = json.loads(path.read_text())
        if cfg.get("schedule", "constant") != "constant":
            shutil.rmtree(args.out)
            parser.error(f"{path} has schedule {cfg['schedule']!r}; this needs a constant rate")
        cfg.update(schedule="step", step_epochs=epoch, step_factor=args.factor)
        path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    print(f"{args.out}: the rate is cut to {args.factor} x {cfg['lr']} from epoch {epoch} "
          f"(step {trainer['loop']['step']}); continue with: mlx-tcn train --resume {args.out} "
          f"--epochs {epoch + 1}")  # fmt: skip


if __name__ == "__main__":
    main()
