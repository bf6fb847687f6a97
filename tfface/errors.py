"""Errors tfface raises for bad input; each names the file and the problem."""


class TffaceError(ValueError):
    """Base class: bad user input (file, config, data), reported as one clear line."""


class DataFileError(TffaceError):
    """A data file (image, .mat, .pkl, .npz, checkpoint) is missing, unreadable or malformed."""


class NoFaceError(TffaceError):
    """The detector found no face in an image."""


class DataServiceError(TffaceError):
    """The tf.data service dispatcher named in the config cannot be reached."""


class WorkerLostError(TffaceError):
    """A multi-worker training peer died or stopped answering."""
