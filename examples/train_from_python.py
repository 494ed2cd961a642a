"""Train on a built-in task from Python: config, run, evaluate the saved checkpoint.

python examples/train_from_python.py [folder]    # default: a temporary folder
"""

import sys
import tempfile
from pathlib import Path

from mlx_tcn.train import build_task, evaluate_split, load_checkpoint, resolve_config, run_training
from mlx_tcn.train.split import iterate_batches

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())

# The adding problem (Bai et al. 2018) at T=50, on the "quick" preset with fewer steps.
cfg = resolve_config(
    cli_values=dict(task="adding", max_steps=300, runs_dir=str(folder), plots=False)
)
result = run_training(cfg)
print(
    f"{result.state.step} steps in {result.seconds:.1f} s: validation MSE "
    f"{result.last['val_loss']:.4f} (always answering 1 scores {result.baseline:.3f})"
)
assert result.last["val_loss"] < result.baseline

# Everything needed to evaluate lives in the run folder.
checkpoint = load_checkpoint(result.run_dir)  # the latest; which="best" for the best
task = build_task(checkpoint.cfg, stats=checkpoint.stats)
batches = iterate_batches(task.val, 256, shuffle=False, drop_last=False)
metrics = evaluate_split(checkpoint.model, task.kind, batches)
print(f"re-evaluated from {checkpoint.path.name}: validation MSE {metrics['loss']:.4f}")
