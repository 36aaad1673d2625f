"""audioset-tools: reproducible few-shot slices of Google's AudioSet."""

__version__ = "0.1.0"
