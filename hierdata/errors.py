"""Errors a user can act on: the entry points print them as one line and exit with code 2."""


class InputError(Exception):
    """Missing input, missing column, bad option: the user's to fix, never a traceback."""


class RejectBoundExceeded(InputError):
    """More input rows were rejected than --max_reject_fraction allows."""
