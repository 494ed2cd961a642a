"""Per-task presets: the settings a run starts from, under the config file and the command line."""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

#: Settings ``auto`` may choose from the data; the list lives here so that presets.py does
#: not import config.py (which imports this module).
AUTO_FIELDS = ("epochs", "eval_every", "patience", "levels", "folds")


# Per-task settings. "paper": the architecture and optimiser of Bai et al. 2018 (Table 2 and
# the reference code's defaults); "quick": small enough to finish in about a minute on a CPU.
# Each task's "quick" preset is its "paper" preset with the changes that make it run in about
# a minute on a laptop CPU.
# The adding preset draws the downsample and the head from N(0, 0.01), as the reference
# code's adding model does (reference_init): on the preset's own draws for seeds 2-5 that
# left the 0.167 plateau by step 3,000 on three of four seeds, pytorch-tcn's initialisation
# of those two layers on none (docs/RESULTS.md). It also trains on the samples in their own
# order every epoch, the last partial batch included, as the reference code's loop does
# (shuffle=False): on seed 1 its weights then reached 2.6e-5 instead of 7.5e-5 under the
# constant rate's scatter, on seed 3 7.5e-5 either way (docs/RESULTS.md).
_ADDING_PAPER = dict(
    reference_init=True,
    shuffle=False,
    seq_len=600,
    n_train=50000,
    n_val=1000,
    levels=8,
    hidden=24,
    kernel_size=8,
    dropout=0.0,
    optimizer="adam",
    lr=2e-3,
    batch_size=32,
    epochs=10,
)
_COPY_PAPER = dict(seq_len=1000, memory_length=10, n_train=10000, n_val=1000, levels=8, hidden=10,
                   kernel_size=8, dropout=0.0, optimizer="rmsprop", lr=5e-4, grad_clip=1.0,
                   batch_size=32, epochs=50)  # fmt: skip
# (Permuted) sequential MNIST as the reference script (pmnist_test.py) trains it: its rate is
# divided by 10 after the 10th of its 20 epochs. This preset used to keep it constant,
# which reached 98.8% (docs/RESULTS.md).
_MNIST_PAPER = dict(n_train=0, n_val=0, levels=8, hidden=25, kernel_size=7, dropout=0.05,
                    optimizer="adam", lr=2e-3, batch_size=64, epochs=20, eval_every=500,
                    schedule="step", step_epochs=10, step_factor=0.1)  # fmt: skip
# The reference code's polyphonic-music defaults (music_test.py), used for both datasets, and
# its schedule: one evaluation per epoch (eval_every=0); after epoch 10, an epoch whose
# validation loss is worse than each of the three before it divides the rate by 10; the best
# validation epoch's weights are the result (docs/RESULTS.md).
_MUSIC_PAPER = dict(levels=4, hidden=150, kernel_size=5, dropout=0.25, optimizer="adam", lr=1e-3,
                    grad_clip=0.2, batch_size=1, epochs=100, eval_every=0, schedule="plateau",
                    plateau_factor=0.1, plateau_window=3, plateau_start=10,
                    restore_best=True)  # fmt: skip
# JSB Chorales with the paper's own settings for it (its appendix table of TCN settings: kernel
# 3, 2 levels of 150 channels, dropout 0.5, gradient clip 0.4), which differ from the script's
# defaults above: test NLL 8.19-8.26 (seeds 1-4) against 8.37-8.39 with the script's defaults
# (docs/RESULTS.md). Nottingham keeps the script's defaults (2.94 against 3.07).
_JSB_PAPER = {**_MUSIC_PAPER, "kernel_size": 3, "levels": 2, "dropout": 0.5, "grad_clip": 0.4}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "adding": {
        "paper": _ADDING_PAPER,
        # T=50: at T=200 (and T=100) the loss sat on the 0.167 plateau for more steps than a
        # minute of CPU allows; the reference code's adding lr (4e-3) escapes it fastest.
        "quick": {
            **_ADDING_PAPER,
            "seq_len": 50,
            "n_train": 38400,
            "levels": 3,
            "lr": 4e-3,
            "epochs": 1,
            # at T=50 there is no long plateau: either initialisation learns as fast (seeds
            # 0, 1: validation MSE 0.0021 and 0.0034 after 1,200 steps, 0.0050 and 0.0039
            # with reference_init), so the quick run keeps the library's initialisation and
            # its shuffled order
            "reference_init": False,
            "shuffle": True,
        },
    },
    "copy_memory": {
        "paper": _COPY_PAPER,
        "quick": {
            **_COPY_PAPER,
            "seq_len": 100,
            "n_train": 32000,
            "n_val": 500,
            "levels": 4,
            "lr": 5e-3,
            "epochs": 1,
        },  # fmt: skip
    },
    "mnist": {
        "paper": _MNIST_PAPER,
        "quick": {**_MNIST_PAPER, "n_train": 2000, "n_val": 500, "epochs": 1, "eval_every": 50},
    },
    "jsb": {
        "paper": _JSB_PAPER,
        # The script's model; 8 epochs: too few for the plateau rule, so the quick run keeps a
        # constant rate.
        "quick": {
            **_MUSIC_PAPER,
            "batch_size": 8,
            "epochs": 8,
            "eval_every": 50,
            "schedule": "constant",
            "restore_best": False,
        },  # fmt: skip
    },
    # Users' data: the budget and depth follow the data (see budget.py), the best weights are
    # kept; classification averages the per-step outputs (GunPoint test accuracy 0.99 against
    # 0.93 from the last step, BasicMotions 0.975 against 0.78), and the best checkpoint is the
    # one with the highest validation accuracy, the later one on a tie (see loop._improves).
    "forecast": {
        "quick": dict(
            seq_len=64,
            levels=4,
            hidden=32,
            kernel_size=3,
            epochs=5,
            auto=[f for f in AUTO_FIELDS if f != "folds"],
            restore_best=True,
        )
    },
    "classify": {
        "quick": dict(
            levels=4,
            hidden=32,
            kernel_size=3,
            epochs=10,
            pool="mean",
            select="accuracy",
            auto=list(AUTO_FIELDS),
            restore_best=True,
        )
    },
}
PRESETS["pmnist"] = PRESETS["mnist"]
PRESETS["nottingham"] = {
    "paper": _MUSIC_PAPER,
    "quick": {**PRESETS["jsb"]["quick"], "epochs": 1},  # 3x more (and longer) sequences
}
