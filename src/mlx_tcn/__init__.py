"""mlx-tcn: Temporal Convolutional Networks for Apple MLX."""

__version__ = "0.1.0"
