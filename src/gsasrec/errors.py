"""The one exception type for mistakes a user can fix (bad files, bad config, bad flags).

The CLI prints these as a single line and exits non-zero; anything else is a bug and keeps its traceback.
"""


class GSASRecError(Exception):
    """A user-facing error: the message names the file, line or field and what was expected. `field`: the
    config field at fault, where there is one (a command can then name the flag that set it)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def shortened(value, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters: an error message need not echo a 100 KB id back."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"
