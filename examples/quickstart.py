"""Quick start: build a TCN, run it, train it for a few steps, save and load it.

python examples/quickstart.py
"""

import tempfile

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim

from mlx_tcn import TCN

mx.random.seed(0)

# Inputs are channels-last: (batch, length, channels).
model = TCN(
    num_inputs=3,
    num_channels=[32, 32, 32],
    kernel_sizes=3,
    causal=True,
    output_projection=1,  # one output value per step
)
print(f"receptive field: {model.receptive_field} steps")

x = mx.random.normal((16, 100, 3))
print("output shape:", model(x).shape)  # (16, 100, 1)

# A toy target: the running mean of channel 0 over the last 8 steps (causal, so learnable).
kernel = mx.ones((1, 8, 1)) / 8
target = mx.conv1d(mx.pad(x[..., :1], [(0, 0), (7, 0), (0, 0)]), kernel)


def loss_fn(model, x, target):
    return nn.losses.mse_loss(model(x), target)


optimizer = optim.Adam(learning_rate=3e-3)
step = nn.value_and_grad(model, loss_fn)
first = None
for _ in range(100):
    loss, grads = step(model, x, target)
    optimizer.update(model, grads)
    mx.eval(model.parameters(), optimizer.state)
    first = loss.item() if first is None else first
print(f"training loss: {first:.4f} -> {loss.item():.4f}")
assert loss.item() < 0.5 * first

# Save (config.json + model.safetensors) and load: the same outputs.
model.eval()
with tempfile.TemporaryDirectory() as folder:
    model.save(folder)
    loaded = TCN.load(folder)
assert mx.allclose(model(x), loaded(x), atol=1e-6)
print("saved and loaded: same outputs")
