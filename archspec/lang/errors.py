"""The base of every error that is the user's to fix rather than a bug: one line, a process exit code.

The command line prints such an error as `archspec: error: <message>` and exits with its `exit_code` (2: invalid
input). Errors of every layer (a bad flag, a run folder in use, a damaged checkpoint) derive from it, so the one
place that maps errors to exit codes (`archspec.cli.main`) needs to know no layer above the language.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input (a flag, a file, a folder, a checkpoint): the message is one line naming it and the fix."""

    exit_code = 2
