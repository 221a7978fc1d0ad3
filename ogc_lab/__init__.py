"""ogc-lab: Optimized Gradient Clipping (OGC) for learning with noisy labels."""

__version__ = "0.1.0"
