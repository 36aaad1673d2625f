"""Errors that carry a message meant for the user, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input the user can fix: printed as one message, exit code 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Terminated(KeyboardInterrupt):
    """A second SIGTERM: abort now. A KeyboardInterrupt, so every cleanup path of Ctrl-C runs too."""


# The shell's convention for "ended by SIGTERM" (128 + 15), also after a graceful stop.
EXIT_TERMINATED = 143
