"""Streaming: process a long signal chunk by chunk, exactly as offline; many streams at once.

python examples/streaming.py
"""

import mlx.core as mx

from mlx_tcn import TCN

mx.random.seed(0)
model = TCN(num_inputs=2, num_channels=[16, 16, 16], kernel_sizes=4, causal=True)
model.eval()  # no dropout while streaming

# One long signal, fed in chunks of any length (here 1, 7 and 50 steps at a time).
signal = mx.random.normal((1, 400, 2))
offline = model(signal)

state = model.init_state(batch_size=1)
step = mx.compile(model.stream)  # optional: a pure function of (chunk, state)
outputs, start = [], 0
for size in [1, 7, 50] * 20:
    if start >= signal.shape[1]:
        break
    chunk = signal[:, start : start + size]
    y, state = step(chunk, state)
    outputs.append(y)
    start += chunk.shape[1]
streamed = mx.concatenate(outputs, axis=1)
print("chunked stream equals offline:", mx.allclose(streamed, offline, atol=1e-5).item())
assert mx.allclose(streamed, offline, atol=1e-5)

# Many independent streams in one batch (say 8 sensors), one step at a time. When stream 3
# ends and a new recording starts in its place, reset only that row of the state.
batch = 8
readings = mx.random.normal((batch, 60, 2))
state = model.init_state(batch_size=batch)
for t in range(60):
    if t == 30:
        state = model.reset_state(state, rows=[3])
    y, state = step(readings[:, t : t + 1], state)

# Row 3 now holds the stream of readings[3, 30:], as if it had started at step 30.
fresh = model(readings[3:4, 30:])
print("reset row equals a fresh stream:", mx.allclose(y[3], fresh[0, -1:], atol=1e-5).item())
assert mx.allclose(y[3], fresh[0, -1:], atol=1e-5)

# The original project's stateful API sits on the same path: the state lives in the model.
model.reset_buffers()
parts = [model(c, inference=True) for c in mx.split(signal, 8, axis=1)]
assert mx.allclose(mx.concatenate(parts, axis=1), offline, atol=1e-5)
print("inference=True equals offline too")
