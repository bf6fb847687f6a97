"""Errors tfface raises for bad input; each names the file and the problem."""


class TffaceError(ValueError):
    """Base class: bad user input (file, config, data), reported as one clear line."""


class DataFileError(TffaceError):
    """A data file (image, .mat, .pkl, .npz, checkpoint) is missing, unreadable or malformed."""


class NoFaceError(TffaceError):
    """The detector found no face in an image."""
