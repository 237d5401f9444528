"""The one version string of inrkit: the package metadata (pyproject.toml reads it),
``inrkit --version`` and the encoder version every ``.inrk`` file records."""

__version__ = "0.1.0"
