"""The project's own errors: a wrong input, a missing or malformed file, a checkpoint that does not fit.

They are the errors a user can fix, so the command line prints their message (which names the input and the fix)
without a traceback and exits with status 2. Any other exception is a bug in the code and keeps its traceback.
"""


class MinimodelsError(Exception):
    """Base class: an error in what the user gave us, not in the code."""


class ConfigError(MinimodelsError, ValueError):
    """A config key, value, preset or experiment name that does not exist; the message lists the valid choices."""


class DataError(MinimodelsError, ValueError):
    """A data file, table, split, video or subtitle track that is missing, unknown or malformed."""


class CheckpointError(MinimodelsError):
    """A checkpoint folder that is missing or does not fit the model it is loaded into; says how to make one."""


class TrainingError(MinimodelsError):
    """Training that cannot go on: the loss stopped being a finite number. Says at which step, and what to change."""


class Interrupted(MinimodelsError):
    """A run stopped by SIGINT or SIGTERM after a whole step; says where its checkpoint is and how to continue."""
