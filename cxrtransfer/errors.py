"""One exception type for bad input, so every stage reports it the same way."""

from __future__ import annotations

from os import PathLike


class PipelineError(Exception):
    """An error a stage reports as one line and a non-zero exit (no traceback)."""


class InputError(PipelineError):
    """Bad input: a message naming the file and, where known, the row and column."""

    def __init__(self, message: str, path: str | PathLike | None = None,
                 row: int | None = None, column: str | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        self.path, self.row, self.column = path, row, column
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class TrainingError(PipelineError):
    """Training cannot go on (a NaN loss, an unusable device setting)."""
