"""Port a pytorch-tcn model (or checkpoint) to mlx-tcn and back.

Needs the optional extras: pip install torch pytorch-tcn==1.2.3

    python examples/port_pytorch_tcn.py
"""

import sys

import mlx.core as mx
import numpy as np

try:
    import torch
    from pytorch_tcn import TCN as TorchTCN
except ImportError:
    sys.exit("this example needs torch and pytorch-tcn: pip install torch pytorch-tcn==1.2.3")

from mlx_tcn import from_pytorch_tcn, to_pytorch_tcn

torch.manual_seed(0)
arguments = dict(
    num_inputs=4,
    num_channels=[16, 16],
    kernel_size=3,
    causal=True,
    use_norm="weight_norm",
    output_projection=2,
)
reference = TorchTCN(**arguments).eval()
# A checkpoint would come from torch.load("model.pt"); here it is the live model's weights.
state_dict = reference.state_dict()

model = from_pytorch_tcn(state_dict, **arguments)  # an mlx_tcn.TCN, in eval mode

x = np.random.default_rng(0).standard_normal((2, 50, 4)).astype(np.float32)
with torch.no_grad():
    # pytorch-tcn is channels-first by default: (batch, channels, length)
    want = reference(torch.from_numpy(x).transpose(1, 2)).transpose(1, 2).numpy()
got = np.array(model(mx.array(x)))  # mlx-tcn is channels-last: (batch, length, channels)
print(f"largest difference from pytorch-tcn: {np.abs(got - want).max():.2e}")
assert np.allclose(got, want, atol=1e-5)

# And back: a state dict pytorch-tcn loads strictly.
back, kwargs = to_pytorch_tcn(model)
TorchTCN(**kwargs).load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})
print("round trip: pytorch-tcn loads the exported weights")
