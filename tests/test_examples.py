"""Every script in examples/ runs as a user would run it, and says what it promises."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HAS_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "pytorch_tcn"))

# script -> lines its output must contain (each example also asserts its own claims)
EXPECTED = {
    "quickstart.py": ["output shape: (16, 100, 1)", "saved and loaded: same outputs"],
    "streaming.py": [
        "chunked stream equals offline: True",
        "reset row equals a fresh stream: True",
        "inference=True equals offline too",
    ],
    "port_pytorch_tcn.py": ["round trip: pytorch-tcn loads the exported weights"],
    "forecast_csv.py": [
        "columns: ('window_end', 'step', 'row', 'pred_demand', 'target_demand')",
        "(199., 1., 200.,",  # the last window ends at the file's last row: row 200 follows
    ],
    "train_from_python.py": ["re-evaluated from step-"],
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script, tmp_path):
    if script == "port_pytorch_tcn.py" and not HAS_TORCH:
        pytest.skip("needs torch and pytorch-tcn")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(tmp_path / "out")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for line in EXPECTED[script]:
        assert line in proc.stdout, proc.stdout


def _readme_block(heading: str) -> str:
    """The first ```python block under ``heading`` in the README."""
    text = (EXAMPLES.parent / "README.md").read_text()
    after = text[text.index(heading + "\n") :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```\n", start)]


def test_readme_own_training_loop_runs_and_learns():
    """The README's compiled training loop runs as written, and its steps lower the loss."""
    code = _readme_block("### Training in your own loop")
    assert "    loss = step(x, y)\n" in code and "range(3)" in code
    code = code.replace("range(3)", "range(40)")
    code = code.replace(
        "    loss = step(x, y)\n", "    loss = step(x, y)\n    losses.append(loss)\n"
    )
    scope: dict = {"losses": []}
    exec(compile(code, "README.md", "exec"), scope)
    losses = [float(v.item()) for v in scope["losses"]]
    assert len(losses) == 40
    assert max(losses[-5:]) < 0.9 * losses[0], losses
