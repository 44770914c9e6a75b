"""Uploaded images: checked, decoded, inverted into a face of the editing service.

An upload is refused with one line (a `UserInputError`, shown in the page) when it is too
large (the message gives its size), not a PNG or JPEG, damaged, of a pixel mode that is not
8-bit colour, grey or palette, smaller than 8 px or larger than 40 megapixels (read from its
header: nothing is decoded before the size is known to be sane). Accepted images are decoded
as `ganedit invert` decodes them (ganedit.inversion.images: RGB, transparent pixels on white,
centre-cropped to a square and resized, area, to the generator's resolution; or, with the
upload's `align` field, its largest face FFHQ-aligned at that resolution, as `--align` does).

Inversion is inversion's method table (ganedit.inversion.methods): the generator's shipped
encoder (as `ganedit invert --method encoder`; at the image's own modes, read as `invert`
reads them, for a self-conditioned generator), then optionally pivotal tuning (`pti`'s
tuning step) as a background job whose progress the page polls. Tuning works on
a copy of the generator; the tuned copy belongs to the new face only.
"""

from __future__ import annotations

import io
import itertools
import logging
import struct
import threading
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageFile

from ganedit.editing.service import EditingService, Face
from ganedit.errors import UserInputError
from ganedit.inversion.images import image_modes, mode_reader, rgb_on_white, to_target
from ganedit.inversion.methods import INVERTERS, Context
from ganedit.inversion.run import InvertConfig
from ganedit.utils.params import Integer, check_params

log = logging.getLogger(__name__)

MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")  # 8-bit colour, grey, palette
MIN_SIDE = 8
MAX_PIXELS = 40_000_000  # decompression bombs: refused from the header, before decoding
MAX_PTI_STEPS = 2000
SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def check_upload_size(size: int | None, max_bytes: int) -> None:
    """An upload of `size` bytes (None: not known yet, checked once read) is refused when
    larger than `max_bytes`, naming both sizes."""
    if size is not None and size > max_bytes:
        from ganedit.ui.messages import megabytes

        raise UserInputError(
            f"expected an image of at most {megabytes(max_bytes)}, received "
            f"{megabytes(size, max_bytes)}"
        )


def decode_upload(
    data: bytes, resolution: int, max_bytes: int, align: bool = False, where: str = "the upload"
) -> torch.Tensor:
    """An uploaded file's bytes as float [3, R, R] in [-1, 1] (see the module's rules)."""
    if not data:
        raise UserInputError("expected a PNG or JPEG image, received an empty file")
    check_upload_size(len(data), max_bytes)
    try:
        with _header(data) as pil:
            _check_header(pil)
            rgb = rgb_on_white(pil)  # decodes
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        if isinstance(err, UserInputError):
            raise
        raise UserInputError(
            f"expected a PNG or JPEG image, received a file that is not one or is damaged "
            f"({type(err).__name__})"
        ) from None
    return to_target(rgb, resolution, align, where)


def _header(data: bytes) -> ImageFile.ImageFile:
    """The image with only its header read, by PIL's PNG or JPEG reader. `Image.open` would
    do the same but refuse a large claimed size with an error of its own before the size
    can be reported; here the size is checked (`_check_header`) before anything decodes."""
    from PIL import JpegImagePlugin, PngImagePlugin

    kind = next((k for magic, k in SIGNATURES.items() if data.startswith(magic)), None)
    if kind is None:
        raise UserInputError(f"expected a PNG or JPEG image, received {_other_format(data)}")
    reader = PngImagePlugin.PngImageFile if kind == "PNG" else JpegImagePlugin.JpegImageFile
    return reader(io.BytesIO(data))


def _other_format(data: bytes) -> str:
    """The format PIL would read `data` as, from its first bytes only (nothing is parsed)."""
    Image.init()
    prefix = data[:16]
    for name in Image.ID:
        _, accept = Image.OPEN[name]
        if accept is not None and accept(prefix) is True:
            return name
    return "a file that is not one or is damaged"


def _check_header(pil: ImageFile.ImageFile) -> None:
    (w, h), mode = pil.size, pil.mode
    if min(w, h) < MIN_SIDE or w * h > MAX_PIXELS:
        raise UserInputError(
            f"expected an image from {MIN_SIDE} px wide to {MAX_PIXELS // 1_000_000} "
            f"megapixels, received {w}x{h}"
        )
    if mode not in MODES:
        raise UserInputError(
            f"expected an 8-bit colour, grey or palette image, received pixel mode {mode}"
        )


@dataclass
class Job:
    """A pivotal-tuning job: its progress, and the tuned face when done."""

    id: str
    steps: int
    done: int = 0
    state: str = "running"  # running, done, failed
    face: str | None = None
    error: str | None = None
    seconds: float = 0.0
    origin: dict = field(default_factory=dict)  # the tuned face's, once done
    thread: threading.Thread | None = field(default=None, repr=False)

    def describe(self) -> dict:
        return {
            "job": self.id,
            "state": self.state,
            "done": self.done,
            "steps": self.steps,
            "face": self.face,
            "error": self.error,
            "origin": self.origin,
        }


class Uploads:
    """Uploads inverted by inversion's methods (`INVERTERS`: the encoder, then pivotal
    tuning on request): encoders, mode readers and the PTI loss, loaded once; PTI jobs by id."""

    def __init__(self, service: EditingService, max_bytes: int):
        self.service = service
        self.max_bytes = max_bytes
        self._encoders: dict[str, torch.nn.Module] = {}
        self._readers: dict[str, object] = {}
        self._loss = None
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def check_size(self, size: int | None) -> None:
        """Refuse an upload whose declared size is over the limit, before reading it."""
        check_upload_size(size, self.max_bytes)

    def invert(
        self, generator: str, data: bytes, filename: str = "upload", align: bool = False
    ) -> Face:
        """The uploaded image as a face: the encoder's code, at the image's own modes (its
        face FFHQ-aligned first with `align`)."""
        source = self.service.source(generator)
        if "ws" not in source.spaces:
            raise UserInputError(
                f"expected a StyleGAN2 generator (with an encoder) to invert uploads, received "
                f"{generator} (z only)"
            )
        image = decode_upload(data, source.resolution, self.max_bytes, align, filename)
        ctx = Context(
            _settings(generator, "encoder"), source, encoder=self._encoder(generator, source)
        )
        with torch.inference_mode():
            ws = INVERTERS["encoder"].invert(ctx, image[None], 0).latents
        t = self._image_modes(generator, source, image)
        origin = {
            "upload": filename,
            "inversion": "encoder",
            **({"aligned": "ffhq"} if align else {}),
        }
        face = self.service.add_face(generator, ws, start_t=t, origin=origin, target=image)
        face.origin["identity_cosine_to_upload"] = self._match(face)
        return face

    def _match(self, face: Face) -> float | None:
        """Identity cosine between the reconstruction and the uploaded image (None when the
        service measures no identity)."""
        embedder = self.service.identity_net
        if embedder is None or face.start_embedding is None:
            return None
        with torch.inference_mode():
            target = embedder.embed(face.target[None])[0]
        return round(float(np.dot(target, face.start_embedding)), 4)

    def _encoder(self, generator: str, source) -> torch.nn.Module:
        from ganedit.inversion.encode import load_encoder_for

        with self._lock:
            if generator not in self._encoders:
                self._encoders[generator] = load_encoder_for(
                    None, source, self.service.config.device
                )
            return self._encoders[generator]

    def _image_modes(self, generator: str, source, image: torch.Tensor) -> torch.Tensor | None:
        """The image's anchor coordinates [1, k], read as `ganedit invert` reads them."""
        with self._lock:
            if generator not in self._readers:
                device = self.service.config.device
                self._readers[generator] = mode_reader(generator, source, device)
            reader = self._readers[generator]
        return image_modes(source, image[None], "read", reader)

    # ------------------------------------------------------------------ pivotal tuning

    def start_tuning(self, face_id: str, steps: int) -> Job:
        """Tune a copy of the face's generator on its uploaded image (a background thread);
        the job's `face` is the tuned face once done."""
        check_params({"steps": steps}, {"steps": Integer(1, MAX_PTI_STEPS)}, "pivotal tuning")
        face = self.service.face(face_id)
        if face.target is None:
            raise UserInputError(
                f"expected an uploaded face for pivotal tuning, received {face_id} (drawn from "
                "the generator: it reconstructs itself already)"
            )
        job = Job(id=f"j{next(self._ids)}", steps=steps)
        job.thread = threading.Thread(target=self._tune, args=(job, face), daemon=True)
        with self._lock:
            self._jobs[job.id] = job
        job.thread.start()
        return job

    def job(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise UserInputError(f"expected a tuning job of this editor, received {job_id!r}")
            return self._jobs[job_id]

    def _tune(self, job: Job, face: Face) -> None:
        import time

        from ganedit.inversion.pti import PTIConfig

        began = time.perf_counter()
        try:

            def advance(done: int, total: int) -> None:
                job.done = done

            cfg = _settings(face.generator, "pti", pivot="encoder", pti=PTIConfig(steps=job.steps))
            ctx = Context(cfg, face.source, self._pti_loss(), modes=face.start_t, on_step=advance)
            tuning = INVERTERS["pti"].tune(ctx, face.target, face.latents[0], 0)
            origin = {**face.origin}
            origin.update(inversion="encoder + pti", pti_steps=tuning.steps)
            tuned = self.service.add_face(
                face.generator,
                tuning.pivot[None],
                source=tuning.source,
                start_t=face.start_t,
                origin=origin,
                target=face.target,
            )
            tuned.origin["identity_cosine_to_upload"] = self._match(tuned)
            job.origin = {k: v for k, v in tuned.origin.items() if isinstance(v, (str, int, float))}
            job.face, job.done, job.state = tuned.id, job.steps, "done"
        except Exception as err:  # noqa: BLE001 - reported to the page as one line, logged
            log.exception("pivotal tuning failed")
            job.error = str(err).splitlines()[0] if str(err) else type(err).__name__
            job.state = "failed"
        job.seconds = time.perf_counter() - began

    def _pti_loss(self):
        from ganedit.inversion.perceptual import default_loss

        with self._lock:
            if self._loss is None:
                self._loss = default_loss(self.service.config.device, perceptual="evaluator")
            return self._loss


def _settings(generator: str, method: str, **settings) -> InvertConfig:
    """The `ganedit invert` settings an upload is inverted with."""
    return InvertConfig(generator=generator, method=method, **settings)
