"""The package version: a leaf module, read by ``chanlayer.core`` and the package."""

__version__ = "0.1.0"
