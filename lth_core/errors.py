"""Errors the CLI turns into one line and exit code 2 (bad input), or a row status (a diverged training)."""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""


class Diverged(Exception):
    """A training produced a non-finite loss; the row is recorded with status 'diverged'."""
