"""The package version (read by the build too: pyproject.toml takes it from here)."""

__version__ = "0.1.0"
