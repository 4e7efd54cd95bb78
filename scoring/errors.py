"""The exception types a user sees: bad input, and a job asked to stop.

Raised at the public edge (data loading, config validation, score inputs) with a message that
says what was expected, what was found and how to fix it. The CLI prints the message alone on
stderr and exits 2; the app shows it as a short error. Anything else is a bug and keeps its
traceback.
"""


class InputError(ValueError):
    """Bad input from the user; the message is meant to be read by a person."""


class Cancelled(Exception):
    """Raised inside a job when it is asked to stop (the CLI turns SIGTERM/SIGINT into it)."""
