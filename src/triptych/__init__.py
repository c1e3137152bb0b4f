"""Triptych: three image classifiers compete live on a stream.

The public surface is small: `triptych.config.get_settings()` for every endpoint and
credential, and the `triptych` command (`triptych.cli`). Everything else is plumbing
that functions and tools import from their own modules.
"""

__version__ = "0.1.0"
