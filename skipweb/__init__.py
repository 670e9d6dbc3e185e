"""skipweb: see what skip connections do to a neural network."""

__version__ = "0.1.0"
