"""The editor's refusal lines: one line, bounded, a received value shown cut."""

MAX_MESSAGE = 600  # characters of an error line (a received value is shown cut)
MAX_SHOWN = 80  # characters of a received value shown in a message


def one_line(message: str) -> str:
    """A message as one line of bounded length."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def shown(value) -> str:
    """A received value for a message: its repr, cut to a readable length."""
    text = repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[: MAX_SHOWN - 1]}… ({len(text)} characters)"


def megabytes(n: int, limit: int | None = None) -> str:
    """`n` bytes in MB, with as many digits as it takes to differ from `limit` in MB."""
    for digits in range(3, 10):
        text = f"{n / 1e6:.{digits}g}"
        if limit is None or n == limit or text != f"{limit / 1e6:.{digits}g}":
            return f"{text} MB"
    return f"{n} bytes"
