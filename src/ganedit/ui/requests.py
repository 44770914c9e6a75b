"""The editor's requests: one pydantic model per JSON body, bounded, and the refusal line
for whatever fails to validate (`validation_message`: `expected ..., received ...`)."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

from ganedit.editing.service import EditState
from ganedit.errors import GaneditError, UserInputError
from ganedit.ui.messages import shown
from ganedit.utils.params import Integer, check_params

MAX_TEXT = 4096  # characters of a text field (Linux's PATH_MAX)
NAME_MAX = 255  # bytes of one name in a path (Linux's NAME_MAX)
MAX_ID = 64  # characters of an id the server made (faces, jobs)
MAX_IDS = 256  # direction ids in one request
MAX_SWEEP_STEPS = 64


def check_text(value, key: str, limit: int = MAX_TEXT) -> str:
    """A non-empty text of at most `limit` characters (for values outside a model)."""
    if not isinstance(value, str) or not value:
        raise UserInputError(f"expected {key} as a non-empty text, received {shown(value)}")
    if len(value) > limit:
        raise UserInputError(
            f"expected {key} of at most {limit} characters, received {len(value)} characters"
        )
    return value


def check_path(value: str, key: str) -> str:
    """A registered name or a file path: a text the file system can be asked about."""
    if "\x00" in value:
        raise UserInputError(f"expected {key} as a path without NUL bytes, received {shown(value)}")
    longest = max(len(part.encode("utf-8", "surrogatepass")) for part in value.split("/"))
    if longest > NAME_MAX:
        raise UserInputError(
            f"expected {key} as a path whose names have at most {NAME_MAX} bytes, received a "
            f"name of {longest} bytes"
        )
    return value


def _path_field(value: str, info: ValidationInfo) -> str:
    return check_path(value, info.field_name) if value else value


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
PathText = Annotated[Text, AfterValidator(_path_field)]
Numbers = Annotated[dict[str, float], Field(max_length=MAX_IDS)]


class Body(BaseModel):
    """A JSON body: strict types (no "3" read as 3); fields it does not name are ignored."""

    model_config = ConfigDict(strict=True)


class GeneratorBody(Body):
    generator: PathText


class BoundaryBody(GeneratorBody):
    path: PathText


class FaceBody(GeneratorBody):
    bank: Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_path_field)] | None = None
    row: int | None = None  # with bank
    seed: int | None = None  # without


class TuneBody(Body):
    face: Text
    steps: int


class CalibrateBody(GeneratorBody):
    directions: Annotated[list[Text], Field(max_length=MAX_IDS)] | None = None  # None: all


class StateBody(Body):
    """The sliders: strengths and modes by name, the ws layer range, the units."""

    strengths: Numbers | None = None
    modes: Numbers | None = None
    layers: Annotated[list[int], Field(min_length=2, max_length=2)] | None = None
    units: str | None = None

    def edit_state(self) -> EditState:
        return EditState.of(self.strengths, self.modes, self.layers, self.units or "latent")


class EditBody(Body):
    face: Text
    state: StateBody | None = None

    def edit_state(self) -> EditState:
        return (self.state or StateBody()).edit_state()


class Compare(Body):
    a: Text
    b: Text
    strength: float


class RenderBody(EditBody):
    compare: Compare | None = None  # two directions side by side at one strength
    start: bool = False  # the face unedited too (the page's start image)


class SweepBody(EditBody):
    slider: Text
    format: Text
    start: float
    end: float
    steps: int

    def values(self) -> list[float]:
        if self.format not in ("gif", "png"):
            raise UserInputError(
                f"expected a sweep format gif or png, received {shown(self.format)}"
            )
        check_params({"steps": self.steps}, {"steps": Integer(2, MAX_SWEEP_STEPS)}, "sweep")
        a, b, n = self.start, self.end, self.steps
        return [a + (b - a) * k / (n - 1) for k in range(n)]


# What a field (or a collection whose elements are keys or indices) takes, for messages.
COLLECTIONS = {
    "strengths": "{name: number}",
    "modes": "{name: number}",
    "layers": "[start, stop]",
    "directions": "a list of direction ids",
}
FIELDS = {
    "compare": "an object {a, b, strength}",
    "state": "an object",
    "units": "latent or calibrated",
    **COLLECTIONS,
}
COUNTED = {"strengths": "strengths", "modes": "modes", "directions": "direction ids"}
TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a non-empty text",
    "dict_type": "an object",
    "model_type": "an object",
    "list_type": "a list",
}


def _field(loc: list[str]) -> str:
    """The field a refusal names: the collection an element belongs to, else the last name."""
    inside = [p for p in loc[1:] if p in COLLECTIONS]
    return inside[-1] if inside else (loc[-1] if loc else "a field")


def validation_message(errors) -> str:
    """FastAPI's validation errors as one `expected ..., received ...` line (the first)."""
    if not errors:
        return "expected a well-formed request, received one the server could not read"
    err = errors[0]
    kind, loc = err.get("type", ""), [str(p) for p in err.get("loc", ())]
    ctx, value = err.get("ctx") or {}, err.get("input")
    if kind == "json_invalid":
        return (
            "expected a JSON object as the request body, received text that is not JSON "
            f"({ctx.get('error', '')})"
        )
    if loc == ["body"]:
        received = type(value).__name__ if value is not None else "none"
        return f"expected a JSON object as the request body, received {received}"
    if kind == "value_error" and isinstance(ctx.get("error"), GaneditError):
        return str(ctx["error"])  # a check of ours, already in our words
    if kind == "missing":
        name = loc[-1] if loc else "a field"
        if isinstance(value, dict):  # a JSON body's field
            return f"expected {name} in the request, received none"
        return f"expected the field {name!r} in the request, received none"
    field = _field(loc)
    if kind == "string_too_long":
        return (
            f"expected {field} of at most {ctx.get('max_length')} characters, received "
            f"{len(value)} characters"
        )
    if kind == "string_too_short":
        return (
            f"expected {field} as {FIELDS.get(field, 'a non-empty text')}, received {shown(value)}"
        )
    if kind == "too_long" and field in COUNTED:
        limit, count = ctx.get("max_length"), ctx.get("actual_length")
        return f"expected at most {limit} {COUNTED[field]}, received {count}"
    what = FIELDS.get(field) or TYPES.get(kind) or err.get("msg", "valid").lower()
    return f"expected {field} as {what}, received {shown(value)}"
