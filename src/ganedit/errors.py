"""Exception types that say whose fault a failure is.

- `UserInputError`: input that does not match what was expected (a path, a name, a size, a
  flag's value, a file's content). The user can fix it; the CLI prints one line and exits 2.
- `DamagedInputError` (a `UserInputError`): a file that exists but cannot be read as what it
  claims to be: truncated, corrupt, missing chunks, non-finite values.
- `ProvenanceError` (a `UserInputError`): artefacts that come from different generators or
  latent spaces, used together.
- `BusyError` (a `UserInputError`): an output another running process is writing.
- `FitError`: the data given cannot serve a method (one class absent, no usable cell, a
  singular design). Not a bug, and not malformed input either: pipelines that try several
  methods record it and go on, while any other exception stops them.

Every other exception is an internal failure and keeps its traceback (exit code 1).
"""


class GaneditError(Exception):
    """Base of the errors the CLI reports as one line with exit code 2."""


class UserInputError(GaneditError, ValueError):
    """Input that does not match what was expected (a path, a name, a size, a file's content)."""


class DamagedInputError(UserInputError):
    """A file that exists but is truncated, corrupt, incomplete or holds non-finite values."""


class ProvenanceError(UserInputError):
    """Artefacts from different generators or latent spaces used together."""


class BusyError(UserInputError):
    """An output that another live process is writing."""


class FitError(GaneditError, RuntimeError):
    """The data cannot serve the method (e.g. one class absent among the rows it uses)."""


def expect(condition: bool, expected: str, received: object) -> None:
    """Raise UserInputError naming what was expected and what was received."""
    if not condition:
        raise UserInputError(f"expected {expected}, received {received!r}")
