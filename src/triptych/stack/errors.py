"""Errors the stack reports to a person: each says what went wrong and what to do."""


class StackError(RuntimeError):
    """A failure with a message meant for the user, printed without a traceback."""


class PortInUseError(StackError):
    pass


class ToolMissingError(StackError):
    pass


class InstallError(StackError):
    pass


class UnhealthyError(StackError):
    pass
