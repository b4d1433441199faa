"""Errors about the user's input. Their message says what was wrong, where, and what to do; the
``ld`` command prints it without a traceback. Anything else is a bug and keeps its traceback."""


class LDError(Exception):
    """Base of the errors that are the user's to fix."""


class ConfigError(LDError, ValueError):
    """A config or parameter value is missing, unknown or out of range."""


class MissingFileError(LDError, FileNotFoundError):
    """A file the command needs does not exist (dataset, checkpoint, config, ...)."""


class BadFileError(LDError, ValueError):
    """A file exists but its content is not what it should be."""
