"""Errors a handler raises to steer delivery."""


class PermanentError(Exception):
    """Retrying cannot help (malformed message, undecodable image, object gone):
    the delivery wrapper dead-letters the event at once instead of after every attempt."""
