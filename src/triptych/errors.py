"""Errors reported to a person (by the stack manager, the Nuclio processor build,
the CLI): each says what went wrong and what to do. Shared by the stack and the
runtime, so neither has to import the other for them."""


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
