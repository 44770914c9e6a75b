"""Usage errors from the command-line parser, said as one line: what was expected, what was
received. (The parser's own messages span several lines and rarely quote the value given.)"""

from __future__ import annotations

import enum
import re

from typer._click import exceptions as click_exceptions


def usage_line(err: click_exceptions.UsageError, argv: list[str]) -> str:
    """`expected ..., received ...` for a parser error on the command line `argv`."""
    if isinstance(err, click_exceptions.MissingParameter):
        return f"expected {_hint(err)} (required), received none"
    if isinstance(err, click_exceptions.BadParameter):
        return _bad_parameter(err, argv)
    if isinstance(err, click_exceptions.NoSuchOption):
        known = (
            f" (did you mean {', '.join(sorted(err.possibilities))}?)" if err.possibilities else ""
        )
        return (
            f"expected an option of `{_command(err)}` (see --help){known}, received "
            f"{err.option_name}"
        )
    if isinstance(err, click_exceptions.BadOptionUsage):
        if "requires an argument" in err.message or "requires" in err.message:
            return f"expected a value after {err.option_name}, received none"
        return f"expected a valid use of {err.option_name}, received: {err.message}"
    message = err.format_message()
    extra = re.match(r"Got unexpected extra arguments? \((.*)\)", message)
    if extra:
        return (
            f"expected only options of `{_command(err)}` (see --help), received {extra.group(1)!r}"
        )
    command = re.match(r"No such command '(.*)'", message)
    if command:
        return f"expected a command of ganedit (see ganedit --help), received {command.group(1)!r}"
    return f"expected a valid command line (see --help), received: {message}"


def _command(err) -> str:
    ctx = getattr(err, "ctx", None)
    return ctx.command_path if ctx is not None else "ganedit"


def _hint(err: click_exceptions.BadParameter) -> str:
    param = err.param
    if param is None:
        return str(err.param_hint or "a value")
    opts = getattr(param, "opts", None) or [param.name or "value"]
    long_first = sorted(opts, key=lambda o: (not o.startswith("--"), o))
    return "/".join(long_first[:2]) if long_first[0].startswith("-") else (param.name or "").upper()


def _bad_parameter(err: click_exceptions.BadParameter, argv: list[str]) -> str:
    param = err.param
    received = _given(param, argv)
    expected = _expected(param, err.message)
    shown = repr(received) if received is not None else "an invalid value"
    return f"expected {expected} for {_hint(err)}, received {shown}"


def _given(param, argv: list[str]) -> str | None:
    """The value the user wrote for `param` (the last occurrence, as the parser uses it)."""
    if param is None:
        return None
    opts = getattr(param, "opts", None) or []
    found = None
    for i, token in enumerate(argv):
        for name in opts:
            if token == name and i + 1 < len(argv):
                found = argv[i + 1]
            elif name.startswith("--") and token.startswith(name + "="):
                found = token[len(name) + 1 :]
    return found


def _expected(param, message: str) -> str:
    """What the parameter accepts, from its declared type (and range, when it has one)."""
    annotation = _annotation(param)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(m.value for m in annotation)
    low, high = _bounds(param)
    if annotation is int:
        kind = "a whole number"
    elif annotation is float:
        kind = "a number"
    else:
        return f"a valid value ({_first_sentence(message)})"
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if low is not None:
        return f"{kind} >= {low}"
    if high is not None:
        return f"{kind} <= {high}"
    return kind


def _annotation(param):
    for attr in ("annotation", "type_annotation", "python_type"):
        value = getattr(param, attr, None)
        if value is not None:
            return _unwrap_optional(value)
    descriptor = getattr(param, "type_descriptor", None) or getattr(param, "descriptor", None)
    if descriptor is not None:
        return _unwrap_optional(getattr(descriptor, "annotation", None))
    return None


def _unwrap_optional(annotation):
    args = getattr(annotation, "__args__", None)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _bounds(param) -> tuple:
    info = getattr(param, "parameter_info", None)
    low = getattr(param, "min", None) if info is None else getattr(info, "min", None)
    high = getattr(param, "max", None) if info is None else getattr(info, "max", None)
    return low, high


def _first_sentence(message: str) -> str:
    return " ".join(str(message).split()).split(". ")[0].rstrip(".")
