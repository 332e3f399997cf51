"""Errors a user can act on. The CLI prints them as one line; anything else is a bug."""


class DigitrecError(Exception):
    """Base class: the message says what went wrong and what to do about it."""


class DataError(DigitrecError):
    """A dataset is missing, corrupt, or fails its checksum."""


class ImageError(DigitrecError):
    """An image cannot be read or decoded."""


class ModelFileError(DigitrecError):
    """A file is not a digitrec model, or is damaged."""


class ConfigError(DigitrecError):
    """An unknown preset, dataset or option value."""


class MissingExtraError(DigitrecError):
    """A feature needs packages from an extra that this install left out."""
