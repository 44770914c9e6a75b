"""Exceptions for mistakes a user can fix. The CLI turns them into one line and exit code 2."""


class UserInputError(ValueError):
    """Input that does not match what was expected (a path, a name, a size, a file's content)."""


def expect(condition: bool, expected: str, received: object) -> None:
    """Raise UserInputError naming what was expected and what was received."""
    if not condition:
        raise UserInputError(f"expected {expected}, received {received!r}")
