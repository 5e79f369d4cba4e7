"""Data sources for the lessons: offline toy and real data, standard folder layouts, downloads.

Every loader raises :class:`DataError` (a ``ValueError``) with a message that names the input and
says what to do, so the command line can print it as one line.
"""


class DataError(ValueError):
    """Data that cannot be used: a missing folder, an unreadable image, an unknown data set name."""


def evenly_spaced(total: int, n: int | None, what: str = "training images") -> list[int]:
    """``n`` indices spread evenly over ``range(total)`` (first and last included), for training on a smaller
    part of a data set that still covers all of it (a video's frames, a folder sorted by name); all of them
    when ``n`` is None. A :class:`DataError` when ``n`` is not in 1 .. total."""
    if n is None:
        return list(range(total))
    if not 1 <= n <= total:
        raise DataError(f"{n} {what}: there are {total}; give 1 .. {total}")
    if n == 1:
        return [0]
    return [round(i * (total - 1) / (n - 1)) for i in range(n)]
