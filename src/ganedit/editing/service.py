"""The editing service: a long-lived object that edits faces interactively.

`ganedit ui` is a thin web layer over it, and any caller that edits one face many times
(a notebook, a future `edit`) can use it directly. What it keeps between calls:

- loaded generators (a few, least recently used first out), the evaluator and the identity
  embedder, so no request loads a model;
- the directions given at start (boundary files or folders of them), checked per generator
  against their sidecars (`directions.provenance`, as `ganedit edit` checks them): a
  direction of another generator or latent space is refused, with the reason;
- calibrations (evaluator-logit units), measured once per generator and direction; a
  calibrated step is bounded as `ganedit edit` bounds it (`editing.core`, one policy);
- faces: a code in the generator's editing space (`ws` for StyleGAN2 sources, so a layer
  range applies; `z` for z-only sources), the source that renders it (a generator tuned by
  pivotal tuning for an uploaded image, never the cached base) and, for a self-conditioned
  generator, the face's own mode coordinates.

Each render takes a face and one or more `EditState`s (strengths per direction, mode targets,
a layer range) and renders them in one batch, with the evaluator's read-out and the identity
cosine to the unedited face. Exports are written atomically: the image (PNG), the code
(`.npy` [1, L, D] with its provenance sidecar, what `ganedit edit --latents` reads) and a
sweep of one slider (a labelled strip PNG or a GIF).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganedit.directions.io import load_boundary, method_label
from ganedit.directions.provenance import check_boundary_use
from ganedit.editing import core
from ganedit.editing.core import UNITS
from ganedit.editing.edit import Calibration, move, save_gif, save_strip
from ganedit.errors import GaneditError, UserInputError
from ganedit.utils.files import atomic_path, sidecar_path, write_json
from ganedit.utils.images import to_uint8
from ganedit.utils.params import Integer, OneOf, Real, check_params

log = logging.getLogger(__name__)

SWEEP_FORMATS = (".png", ".gif")
STRENGTH_LIMIT = 1e3  # |strength| a slider may send (latent or calibrated units)


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of an `EditingService`."""

    boundaries: tuple[str, ...] = ()  # boundary .npy files, or folders of them
    # With no boundaries given, offer each generator the directions ganedit ships for it
    # (`directions.shipped`: today dcgan-digiface's); given boundaries replace them.
    shipped: bool = True
    device: str = "cpu"
    evaluator: str = "evaluator"  # attribute read-out and calibration: any attribute predictor
    identity: str | None = "identity"  # identity cosine to the unedited face; None: not shown
    max_generators: int = 3  # loaded generators kept (least recently used leaves first)
    max_faces: int = 64  # faces kept (each a code, maybe a tuned generator)
    calibration_n: int = 128  # probe samples per calibration (`edit --calibrated`'s)
    calibration_seed: int = 12345
    png_compress_level: int = 1  # fast PNG encoding for live updates

    _CONSTRAINTS = {
        "max_generators": Integer(1, 64),
        "max_faces": Integer(1, 100_000),
        "calibration_n": Integer(8, 100_000),
        "calibration_seed": Integer(0, 2**63 - 1),
        "png_compress_level": Integer(0, 9),
    }

    def __post_init__(self):
        values = {k: getattr(self, k) for k in self._CONSTRAINTS}
        check_params(values, self._CONSTRAINTS, "editing service")


@dataclass(frozen=True)
class Direction:
    """A loaded direction: its id (the file's stem, made unique), where it came from and what
    its sidecar records. `variant` is the method with the variants that share a method name
    spelled out (`interfacegan+conditional`, `mab-exact`); `label` names the direction
    unambiguously among those loaded with it."""

    id: str
    path: str
    attribute: str | None
    method: str | None
    space: str | None
    generator: str | None
    intercept: float
    vector: np.ndarray = field(repr=False, compare=False)
    variant: str = "direction"
    conditions: tuple[str, ...] = ()  # the stems of the directions it was projected off
    label: str = ""

    def describe(self) -> dict:
        return {
            "id": self.id,
            "path": self.path,
            "attribute": self.attribute,
            "method": self.method,
            "variant": self.variant,
            "space": self.space,
            "generator": self.generator,
            "conditions": list(self.conditions),
            "label": self.label or self.base_label,
            "title": self.title,
        }

    @property
    def base_label(self) -> str:
        """`attribute · method variant · space`, e.g. `age · interfacegan+conditional · w`."""
        return " · ".join([self.attribute or self.id, self.variant, self.space or "?"])

    @property
    def title(self) -> str:
        """Everything the sidecar says about where the direction comes from, in one line."""
        text = (
            f"{self.id}: {self.variant} direction of {self.attribute or '?'}, learned in "
            f"{self.space or '?'} on {self.generator or '?'}"
        )
        if self.conditions:
            text += f", conditioned on {', '.join(self.conditions)}"
        return f"{text} ({self.path})"


@dataclass(frozen=True)
class Refusal:
    """A direction that cannot be used with a generator, and why (one line)."""

    path: str
    reason: str


@dataclass(frozen=True)
class EditState:
    """What the sliders say: strengths per direction id, mode targets t in [0, 1] per
    attribute (self-conditioned generators), the ws layer range and the strength units."""

    strengths: tuple[tuple[str, float], ...] = ()
    modes: tuple[tuple[str, float], ...] = ()
    layers: tuple[int, int] | None = None
    units: str = "latent"

    def __post_init__(self):
        check_params({"units": self.units}, {"units": OneOf(UNITS)}, "edit state")
        for name, value in self.strengths:
            limit = Real(-STRENGTH_LIMIT, STRENGTH_LIMIT)
            check_params({name: value}, {name: limit}, "strength")
        for name, value in self.modes:
            check_params({name: value}, {name: Real(0.0, 1.0)}, "mode target")
        if self.layers is not None and not 0 <= self.layers[0] < self.layers[1]:
            raise UserInputError(
                f"expected a layer range START:STOP with 0 <= START < STOP, received "
                f"{self.layers[0]}:{self.layers[1]}"
            )

    @classmethod
    def of(cls, strengths=None, modes=None, layers=None, units="latent") -> EditState:
        """From plain dicts (what a request carries)."""
        return cls(
            tuple((str(k), float(v)) for k, v in (strengths or {}).items()),
            tuple((str(k), float(v)) for k, v in (modes or {}).items()),
            None if layers is None else (int(layers[0]), int(layers[1])),
            units,
        )

    def with_strength(self, direction_id: str, value: float) -> EditState:
        rest = tuple((k, v) for k, v in self.strengths if k != direction_id)
        return dataclasses.replace(self, strengths=(*rest, (direction_id, float(value))))

    def with_mode(self, attribute: str, value: float) -> EditState:
        rest = tuple((k, v) for k, v in self.modes if k != attribute)
        return dataclasses.replace(self, modes=(*rest, (attribute, float(value))))


@dataclass
class Face:
    """One face being edited."""

    id: str
    generator: str  # the key of the cached base generator
    source: object  # renders the face: the base source or a tuned copy of it
    latents: torch.Tensor  # [1, L, D] (ws) or [1, z_dim] (z)
    space: str
    start_t: torch.Tensor | None  # [1, k] mode coordinates of the face itself, or None
    origin: dict
    start_embedding: np.ndarray | None = None  # identity embedding of the unedited face
    target: torch.Tensor | None = field(default=None, repr=False)  # an upload's image [3, H, W]


@dataclass(frozen=True)
class Rendered:
    """One rendered state: uint8 [H, W, 3] and its read-out."""

    image: np.ndarray
    readout: dict


class EditingService:
    """Loaded models, checked directions and faces: many fast edits, no reloads."""

    def __init__(self, config: ServiceConfig = ServiceConfig()):
        self.config = config
        self._lock = threading.RLock()
        self._sources: OrderedDict[str, object] = OrderedDict()
        self._checked: dict[str, tuple[list[Direction], list[Refusal]]] = {}
        self._calibrations: dict[tuple[str, str], Calibration] = {}
        self._faces: OrderedDict[str, Face] = OrderedDict()
        self._ids = itertools.count(1)
        self._evaluator = None
        self._identity = None
        self.loads = 0  # generator loads so far (the cache's test counts them)
        self.boundary_files = _boundary_files(config.boundaries)
        self._loaded = [(str(p), *load_boundary(p)) for p in self.boundary_files]

    # -------------------------------------------------------------------- models

    def source(self, generator: str):
        """The generator source for a registered name or path, loaded once and cached."""
        from ganedit.models.sources import load_generator

        key = str(generator)
        with self._lock:
            if key in self._sources:
                self._sources.move_to_end(key)
                return self._sources[key]
            source = load_generator(key, self.config.device)
            self.loads += 1
            self._sources[key] = source
            while len(self._sources) > self.config.max_generators:
                old, _ = self._sources.popitem(last=False)
                self._checked.pop(old, None)
            return source

    @property
    def evaluator(self):
        from ganedit.models.registry import load_attribute_predictor

        with self._lock:
            if self._evaluator is None:
                self._evaluator = load_attribute_predictor(
                    self.config.evaluator, self.config.device, foreign=True
                )
            return self._evaluator

    @property
    def identity_net(self):
        """The identity embedder, or None when the service measures no identity."""
        from ganedit.models.registry import load_identity_embedder

        if self.config.identity is None:
            return None
        with self._lock:
            if self._identity is None:
                self._identity = load_identity_embedder(self.config.identity, self.config.device)
            return self._identity

    @property
    def readout_kinds(self) -> dict[str, str]:
        """The read-out's entries in order with their kind: the evaluator's attributes
        (`probability` or `value`), then `identity_cosine` (kind `cosine`) when measured."""
        kinds = dict(self.evaluator.attribute_kinds)
        if self.config.identity is not None:
            kinds["identity_cosine"] = "cosine"
        return kinds

    @staticmethod
    def editing_space(source) -> str:
        """`ws` where the source has it (layer ranges apply there), else `z`."""
        return "ws" if "ws" in source.spaces else "z"

    # -------------------------------------------------------------------- directions

    def directions(self, generator: str) -> tuple[list[Direction], list[Refusal]]:
        """The given directions usable with `generator`, and those refused (with why)."""
        with self._lock:
            if generator not in self._checked:
                source = self.source(generator)
                self._checked[generator] = self._check_all(source, self._offered(generator))
            return self._checked[generator]

    def _offered(self, generator: str) -> list[tuple[str, np.ndarray, dict]]:
        """The given boundaries, or (none given) the ones shipped for `generator`."""
        if self._loaded or not self.config.shipped:
            return self._loaded
        from ganedit.directions.shipped import shipped_directions

        return [(str(p), *load_boundary(p)) for p in shipped_directions(generator)]

    def _check_all(self, source, loaded) -> tuple[list[Direction], list[Refusal]]:
        usable, refused, taken = [], [], set()
        for path, vector, meta in loaded:
            try:
                direction = self._check(source, path, vector, meta, taken)
            except GaneditError as err:  # the CLI's line, without its advice to force
                reason = str(err).replace(" (pass --force to use it anyway)", "")
                refused.append(Refusal(path, reason))
                continue
            taken.add(direction.id)
            usable.append(direction)
        return _labelled(usable), refused

    def _check(self, source, path: str, vector, meta: dict, taken: set) -> Direction:
        space = self.editing_space(source)
        check_boundary_use(meta, source.identity, space, f"boundary {path}")
        latents = torch.zeros(1, *self._code_shape(source))
        move(latents, vector, 0.0)  # the shape fits the generator's codes (or raises)
        return Direction(
            id=_unique(Path(path).stem, taken),
            path=path,
            attribute=meta.get("attribute"),
            method=meta.get("method"),
            space=meta.get("space"),
            generator=meta.get("generator"),
            intercept=float(meta.get("intercept") or 0.0),
            vector=np.asarray(vector, np.float32),
            variant=method_label(meta),
            conditions=tuple(Path(str(c)).stem for c in meta.get("conditions") or ()),
        )

    def check_boundary(self, generator: str, path: str | Path) -> Direction:
        """Check one more boundary file against `generator` (ProvenanceError when it belongs
        to another generator or space) without adding it."""
        vector, meta = load_boundary(path)
        with self._lock:
            return self._check(self.source(generator), str(path), vector, meta, set())

    def direction(self, generator: str, direction_id: str) -> Direction:
        usable, refused = self.directions(generator)
        for d in usable:
            if d.id == direction_id:
                return d
        ids = [d.id for d in usable]
        raise UserInputError(
            f"expected a direction loaded for {generator!r} among {ids}, received {direction_id!r}"
        )

    def calibration(self, generator: str, direction_id: str) -> Calibration | None:
        """The direction's calibration (evaluator-logit units of its attribute), measured
        once; None when its sidecar names no attribute the evaluator reads."""
        direction = self.direction(generator, direction_id)
        evaluator = self.evaluator
        if evaluator.attribute_kinds.get(direction.attribute) != "probability":
            return None
        key = (generator, direction_id)
        with self._lock:
            if key not in self._calibrations:
                source = self.source(generator)
                space = "w" if direction.vector.ndim == 1 and "w" in source.spaces else None
                space = space or self.editing_space(source)
                self._calibrations[key] = core.measure(
                    source,
                    direction.vector,
                    space,
                    evaluator,
                    direction.attribute,
                    n=self.config.calibration_n,
                    seed=self.config.calibration_seed,
                )
            return self._calibrations[key]

    def latent_per_unit(
        self, generator: str, direction_id: str, units: str, strength: float = 1.0
    ) -> float:
        """Latent units per slider unit for a slider at `strength`: 1 in latent units; in
        calibrated units 1 / slope, bounded as `ganedit edit` bounds it (`editing.core`; a
        step of at most DEFAULT_BOUND x the span); refused for a direction too weak to
        calibrate."""
        if units == "latent":
            return 1.0
        cal = self.calibration(generator, direction_id)
        if cal is None:
            raise UserInputError(
                f"expected a direction whose attribute the evaluator reads for calibrated "
                f"units, received {direction_id!r}"
            )
        return core.scale(cal, abs(strength)).latent_per_unit

    # -------------------------------------------------------------------- faces

    def face_from_seed(self, generator: str, seed: int) -> Face:
        """The face of z sample `seed` (row 0 of `sample_z(1, seed)`), on a self-conditioned
        generator at its own modes: those `ganedit sample --seed SEED` draws for its first
        face (the data's, where the model ships them)."""
        from ganedit.models.sources import sample_coordinates

        check_params({"seed": seed}, {"seed": Integer(0, 2**63 - 1)}, "face")
        source = self.source(generator)
        z = source.sample_z(1, seed)
        latents = z if self.editing_space(source) == "z" else source.to_ws(z, "z").cpu()
        _, start_t = sample_coordinates(source, generator, None, 1, seed)
        return self.add_face(generator, latents, start_t=start_t, origin={"seed": seed})

    def face_from_bank(self, generator: str, bank: str | Path, row: int) -> Face:
        """The face of row `row` of a latent bank made with this generator."""
        from ganedit.latents import LatentBank

        source = self.source(generator)
        opened = LatentBank.open(bank)
        check_params({"row": row}, {"row": Integer(0, max(opened.n - 1, 0))}, "bank row")
        space = "w" if "w" in opened.spaces and "w" in source.spaces else "z"
        identity = opened.generator_identity
        origin = {
            "generator": identity["name"],
            "generator_sha256": identity["sha256"],
            "space": space,
        }
        where = f"bank {bank}"
        check_boundary_use(origin, source.identity, space, where, what="latents made")
        codes = torch.from_numpy(np.asarray(opened.latents(space, row, row + 1), np.float32))
        if self.editing_space(source) == "ws":
            codes = source.to_ws(codes, space).cpu()
        start_t = None
        modes = opened.mode_record(row, row + 1)
        if modes is not None:
            start_t = core.start_coordinates(source, {"modes": modes}, 1)
        return self.add_face(
            generator, codes, start_t=start_t, origin={"bank": str(bank), "row": row}
        )

    def add_face(
        self,
        generator: str,
        latents: torch.Tensor,
        source=None,
        start_t: torch.Tensor | None = None,
        origin: dict | None = None,
        target: torch.Tensor | None = None,
    ) -> Face:
        """Keep a face: a code [1, ...] in the editing space of `generator` (rendered by
        `source`, e.g. a tuned copy, when given), its mode coordinates [1, k] (neutral when
        None, on a self-conditioned generator) and, for an upload, the image it came from."""
        base = self.source(generator)
        render_with = source if source is not None else base
        space = self.editing_space(base)
        latents = torch.as_tensor(latents, dtype=torch.float32).cpu()
        expected = self._code_shape(base)
        if tuple(latents.shape) != (1, *expected):
            raise UserInputError(
                f"expected one code of shape {[1, *expected]} ({space}), received "
                f"{list(latents.shape)}"
            )
        layout = base.mode_layout
        if layout is None:
            start_t = None
        elif start_t is None:
            start_t = layout.neutral(1)
        face = Face(
            id=f"f{next(self._ids)}",
            generator=generator,
            source=render_with,
            latents=latents,
            space=space,
            start_t=start_t,
            origin=dict(origin or {}),
            target=target,
        )
        start = self._render_batch(face, [EditState()])
        embedder = self.identity_net
        face.start_embedding = None if embedder is None else embedder.embed(start)[0]
        with self._lock:
            self._faces[face.id] = face
            while len(self._faces) > self.config.max_faces:
                self._faces.popitem(last=False)
        return face

    def face(self, face_id: str) -> Face:
        with self._lock:
            if face_id not in self._faces:
                raise UserInputError(
                    f"expected a face this editor holds, received {face_id!r} (it may have been "
                    "dropped: draw or upload it again)"
                )
            self._faces.move_to_end(face_id)
            return self._faces[face_id]

    @staticmethod
    def _code_shape(source) -> tuple[int, ...]:
        if "ws" in source.spaces:
            g = source.generator
            return (g.num_ws, g.w_dim)
        return (source.z_dim,)

    # -------------------------------------------------------------------- rendering

    def edited_latents(
        self, face: Face, state: EditState, largest: dict[str, float] | None = None
    ) -> torch.Tensor:
        """The face's code moved by every slider of `state`: [1, ...]. A calibrated slider is
        bounded at its own strength, or at `largest[id]` (a sweep's largest |value|, so the
        sweep scales as one edit, as `ganedit edit`'s columns do)."""
        layers = state.layers if face.space == "ws" else None
        if state.layers is not None and face.space != "ws":
            raise UserInputError(f"expected a layer range only for ws codes, received {face.space}")
        if layers is not None and layers[1] > len(face.latents[0]):
            raise UserInputError(
                f"expected a layer range within 0..{len(face.latents[0])}, received "
                f"{layers[0]}:{layers[1]}"
            )
        vectors, steps = [], []
        for direction_id, strength in state.strengths:
            if strength == 0:
                continue
            vectors.append(self.direction(face.generator, direction_id).vector)
            at = (largest or {}).get(direction_id, strength)
            per_unit = self.latent_per_unit(face.generator, direction_id, state.units, at)
            steps.append(strength * per_unit)
        return core.moved(face.latents, vectors, steps, layers=layers)

    def mode_coordinates(self, face: Face, state: EditState) -> torch.Tensor | None:
        """Anchor coordinates [1, k]: the face's own, with the state's targets set."""
        if face.start_t is None:
            if state.modes:
                raise UserInputError(
                    f"expected a self-conditioned generator for mode sliders, received "
                    f"{face.generator} (it has no modes)"
                )
            return None
        return face.source.mode_layout.targets(face.start_t, dict(state.modes))

    def _render_batch(self, face: Face, states: list[EditState], largest=None) -> torch.Tensor:
        codes = torch.cat([self.edited_latents(face, s, largest) for s in states])
        coords = [self.mode_coordinates(face, s) for s in states]
        with self._lock, torch.inference_mode():
            modes = None
            if coords[0] is not None:
                modes = face.source.mode_layout.generator_vector(torch.cat(coords))
            return core.render(face.source, codes, face.space, modes)

    def render(self, face_id: str, states: list[EditState]) -> list[Rendered]:
        """Each state of one face rendered in one batch, with its read-out: the evaluator's
        probabilities (and yaw) and the identity cosine to the unedited face."""
        if not states:
            raise UserInputError("expected at least one edit state, received none")
        face = self.face(face_id)
        images = self._render_batch(face, states)
        readouts = self.readout(images, face.start_embedding)
        pictures = to_uint8(images)
        return [Rendered(p, r) for p, r in zip(pictures, readouts, strict=True)]

    def readout(self, images: torch.Tensor, start_embedding: np.ndarray | None) -> list[dict]:
        with self._lock, torch.inference_mode():
            scores = self.evaluator.predict(images)
            embedder = self.identity_net
            embeddings = None if embedder is None else embedder.embed(images)
        out = []
        for i in range(len(images)):
            record = {name: float(scores[name][i]) for name in self.evaluator.attribute_kinds}
            if embeddings is not None and start_embedding is not None:
                record["identity_cosine"] = float(np.dot(embeddings[i], start_embedding))
            out.append(record)
        return out

    def png(self, image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(
            buffer, format="png", compress_level=self.config.png_compress_level
        )
        return buffer.getvalue()

    # -------------------------------------------------------------------- exports

    def export_image(self, face_id: str, state: EditState, path: str | Path) -> Path:
        """The edited face as a PNG (written atomically)."""
        rendered = self.render(face_id, [state])[0]
        with atomic_path(path) as tmp:
            tmp.write_bytes(self.png(rendered.image))
        return Path(path)

    def latent_record(self, face_id: str, state: EditState) -> tuple[np.ndarray, dict]:
        """The edited code as float32 [1, ...] and its provenance sidecar: what
        `ganedit edit --latents CODE.npy --space ws` reads and checks."""
        face = self.face(face_id)
        code = self.edited_latents(face, state).numpy().astype(np.float32)
        identity = face.source.identity
        record = {
            "generator": identity["name"],
            "space": face.space,
            "method": "ganedit ui",
            "n": 1,
            "origin": face.origin,
            "edit": {
                "strengths": dict(state.strengths),
                "units": state.units,
                "layers": None if state.layers is None else list(state.layers),
                "modes": dict(state.modes),
            },
        }
        if identity.get("sha256"):
            record["generator_sha256"] = identity["sha256"]
        if identity.get("parent"):
            record["parent"] = identity["parent"]
        coords = self.mode_coordinates(face, state)
        if coords is not None:
            record["modes"] = {
                "attributes": face.source.mode_attributes,
                "how": "ui",
                "t": coords.tolist(),
            }
        return code, record

    def export_latent(self, face_id: str, state: EditState, path: str | Path) -> Path:
        """The edited code as `.npy` [1, ...] and its `.npy.json` sidecar beside it."""
        path = Path(path)
        if path.suffix != ".npy":
            raise UserInputError(f"expected a .npy path for the code, received {str(path)!r}")
        code, record = self.latent_record(face_id, state)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, code)
        write_json(sidecar_path(path), record)
        return path

    def sweep(
        self, face_id: str, state: EditState, slider: str, values: list[float]
    ) -> torch.Tensor:
        """Frames [S, 1, 3, H, W]: `slider` (a direction id, or `mode:ATTR`) set to each
        value with every other slider as in `state`, rendered in one batch."""
        if not values:
            raise UserInputError("expected at least one sweep value, received none")
        largest = None
        if slider.startswith("mode:"):
            states = [state.with_mode(slider[5:], v) for v in values]
        else:
            self.direction(self.face(face_id).generator, slider)
            states = [state.with_strength(slider, v) for v in values]
            largest = {slider: max(abs(float(v)) for v in values)}
        images = self._render_batch(self.face(face_id), states, largest)
        return images[:, None]

    def export_sweep(
        self,
        face_id: str,
        state: EditState,
        slider: str,
        values: list[float],
        path: str | Path,
        scale: int = 2,
    ) -> Path:
        """A labelled strip (`.png`) or an animation (`.gif`) of the sweep."""
        path = Path(path)
        if path.suffix.lower() not in SWEEP_FORMATS:
            raise UserInputError(
                f"expected a sweep path ending in {' or '.join(SWEEP_FORMATS)}, received "
                f"{str(path)!r}"
            )
        frames = self.sweep(face_id, state, slider, values)
        title = slider if slider.startswith("mode:") else self._title(face_id, slider, state)
        if path.suffix.lower() == ".gif":
            return save_gif(frames, path, values, title, scale)
        return save_strip(frames, path, values, title, scale, row_labels=[""])

    def _title(self, face_id: str, slider: str, state: EditState) -> str:
        d = self.direction(self.face(face_id).generator, slider)
        return f"{d.variant}: {d.attribute or d.id} ({state.units} units)"


def _labelled(directions: list[Direction]) -> list[Direction]:
    """Each direction with its label: `attribute · method variant · space`, and its id after
    that where two directions would otherwise read the same (one file in two folders, or two
    fits of one method)."""
    counts: dict[str, int] = {}
    for d in directions:
        counts[d.base_label] = counts.get(d.base_label, 0) + 1
    return [
        dataclasses.replace(
            d, label=d.base_label if counts[d.base_label] == 1 else f"{d.base_label} · {d.id}"
        )
        for d in directions
    ]


def _unique(stem: str, taken: set) -> str:
    """`stem`, or `stem-2`, `stem-3`, ... if taken (two files of one name in two folders)."""
    if stem not in taken:
        return stem
    return next(f"{stem}-{k}" for k in itertools.count(2) if f"{stem}-{k}" not in taken)


def _boundary_files(paths: tuple[str, ...]) -> list[Path]:
    """Boundary .npy files from files and folders (a folder: its *.npy, sorted)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(path.glob("*.npy"))
            if not found:
                raise UserInputError(
                    f"expected boundary .npy files in the folder, received none in {raw!r}"
                )
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UserInputError(
                f"expected a boundary .npy file or a folder of them, received {raw!r}"
            )
    return files
