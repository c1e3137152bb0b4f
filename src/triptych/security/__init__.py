"""Who may write: API keys and JWT bearer tokens with scopes, and upload rate limits.

Framework-free on purpose: the API (FastAPI), the upload and retrain functions
(Nuclio handlers) and the CLI all check credentials with the same `Guard`.
"""

from .guard import AuthError, Guard, Principal, RateLimited
from .keys import SCOPES

__all__ = ["SCOPES", "AuthError", "Guard", "Principal", "RateLimited"]
