"""Data sources for the lessons: offline toy and real data, standard folder layouts, downloads.

Every loader raises :class:`DataError` (a ``ValueError``) with a message that names the input and
says what to do, so the command line can print it as one line.
"""


class DataError(ValueError):
    """Data that cannot be used: a missing folder, an unreadable image, an unknown data set name."""
