"""Errors a user sees as one sentence (never a traceback)."""


class UserError(Exception):
    """A problem the user can fix: the message names the file and the fix."""


class SubmissionError(UserError):
    """The submission file itself cannot be graded (not found, not a notebook, too big...)."""
