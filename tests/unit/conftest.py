import os

import pytest


@pytest.fixture(autouse=True)
def no_triptych_env(monkeypatch):
    """Unit tests see the defaults, whatever the shell or the integration suite set."""
    from triptych.config import get_settings

    for name in [n for n in os.environ if n.startswith("TRIPTYCH_")]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()  # settings read under the defaults must not outlive the test
