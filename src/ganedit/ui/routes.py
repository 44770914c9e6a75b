"""The editor's JSON API, one router per concern (fastapi is imported here: the `ui` extra).

The routes reach what `create_app` set up through `app.state`: `service` (the
`EditingService`), `inverter` (uploads and pivotal tuning) and `config` (the `UIConfig`).
"""

import base64
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from ganedit.editing.service import STRENGTH_LIMIT, EditingService, EditState
from ganedit.errors import UserInputError
from ganedit.ui import requests as rq
from ganedit.ui.generators import available_generators, describe_generator


def _service(request: Request) -> EditingService:
    return request.app.state.service


def _inverter(request: Request):  # a ui.upload.Uploads (not imported: it imports the server)
    return request.app.state.inverter


Service = Annotated[EditingService, Depends(_service)]
Inverter = Annotated[Any, Depends(_inverter)]

# ------------------------------------------------------------------------------------------
# Generators, faces, renders

faces = APIRouter(prefix="/api")


@faces.get("/info")
def info(request: Request):
    config = request.app.state.config
    return {
        "generators": available_generators(),
        "generator": config.generator,
        "max_upload_mb": config.max_upload_mb,
        "max_sweep_steps": rq.MAX_SWEEP_STEPS,
        "max_strength": STRENGTH_LIMIT,
    }


@faces.post("/generator")
def generator(body: rq.GeneratorBody, service: Service):
    return describe_generator(service, body.generator)


@faces.post("/face")
def face(body: rq.FaceBody, service: Service):
    if body.bank:
        made = service.face_from_bank(body.generator, body.bank, _given(body.row, "row"))
    else:
        made = service.face_from_seed(body.generator, _given(body.seed, "seed"))
    return face_record(made)


@faces.post("/render")
def render(body: rq.RenderBody, service: Service):
    began = time.perf_counter()
    state = body.edit_state()
    states = [state]
    if body.compare:
        c = body.compare
        base = EditState(modes=state.modes, layers=state.layers, units=state.units)
        states += [base.with_strength(c.a, c.strength), base.with_strength(c.b, c.strength)]
    if body.start:
        states.append(EditState())
    rendered = service.render(body.face, states)
    items = [{"image": _data_url(service.png(r.image)), "readout": r.readout} for r in rendered]
    start = items.pop() if body.start else None
    out = {**items[0], "compare": items[1:], "ms": 1000 * (time.perf_counter() - began)}
    return {**out, "start": start} if body.start else out


# ------------------------------------------------------------------------------------------
# Directions and their calibrated units

directions = APIRouter(prefix="/api")


@directions.post("/boundary")
def boundary(body: rq.BoundaryBody, service: Service):
    return {"accepted": service.check_boundary(body.generator, body.path).describe()}


@directions.post("/calibrate")
def calibrate(body: rq.CalibrateBody, service: Service):
    out = {}
    for direction_id in _direction_ids(body, service):
        try:
            per_unit = None
            if service.calibration(body.generator, direction_id) is not None:
                per_unit = service.latent_per_unit(body.generator, direction_id, "calibrated")
            out[direction_id] = {"latent_per_unit": per_unit, "weak": False}
        except UserInputError as err:
            out[direction_id] = {"latent_per_unit": None, "weak": True, "why": str(err)}
    return out


def _direction_ids(body: rq.CalibrateBody, service: EditingService) -> list[str]:
    """The request's `directions` (each one loaded for the generator), or all when absent."""
    if body.directions is None:
        return [d.id for d in service.directions(body.generator)[0]]
    ids = list(dict.fromkeys(body.directions))
    for direction_id in ids:
        service.direction(body.generator, direction_id)
    return ids


# ------------------------------------------------------------------------------------------
# Uploads and pivotal tuning jobs

uploads = APIRouter(prefix="/api")


@uploads.post("/upload")
async def upload(
    inverter: Inverter,
    generator: Annotated[str, Form(min_length=1, max_length=rq.MAX_TEXT)],
    file: Annotated[UploadFile, File()],
    align: Annotated[bool, Form()] = False,  # the photo's face FFHQ-aligned first (--align)
):
    name = rq.check_path(generator, "generator")
    inverter.check_size(file.size)
    data = await file.read(inverter.max_bytes + 1)
    return face_record(inverter.invert(name, data, _shown_name(file.filename), align=align))


@uploads.post("/tune")
def tune(body: rq.TuneBody, inverter: Inverter):
    return inverter.start_tuning(body.face, body.steps).describe()


@uploads.get("/job/{job_id}")
def job(job_id: str, inverter: Inverter):
    return inverter.job(rq.check_text(job_id, "job", rq.MAX_ID)).describe()


# ------------------------------------------------------------------------------------------
# Downloads

exports = APIRouter(prefix="/api/export")


@exports.post("/image")
def export_image(body: rq.EditBody, service: Service):
    rendered = service.render(body.face, [body.edit_state()])[0]
    return _download(service.png(rendered.image), "image/png", "ganedit_face.png")


@exports.post("/latent")
def export_latent(body: rq.EditBody, service: Service):
    import io

    import numpy as np

    code, _ = service.latent_record(body.face, body.edit_state())
    buffer = io.BytesIO()
    np.save(buffer, code)
    return _download(buffer.getvalue(), "application/octet-stream", "ganedit_latent.npy")


@exports.post("/sidecar")
def export_sidecar(body: rq.EditBody, service: Service):
    import json

    _, record = service.latent_record(body.face, body.edit_state())
    data = (json.dumps(record, indent=2) + "\n").encode()
    return _download(data, "application/json", "ganedit_latent.json")


@exports.post("/sweep")
def export_sweep(body: rq.SweepBody, service: Service):
    import tempfile

    values = body.values()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sweep.{body.format}"
        service.export_sweep(body.face, body.edit_state(), body.slider, values, path)
        data = path.read_bytes()
    return _download(data, f"image/{body.format}", f"ganedit_sweep.{body.format}")


ROUTERS = (faces, directions, uploads, exports)

# ------------------------------------------------------------------------------------------
# Answers


def face_record(face) -> dict:
    record = {k: v for k, v in face.origin.items() if isinstance(v, (str, int, float))}
    modes = {}
    if face.start_t is not None:
        names = face.source.mode_attributes
        modes = {name: float(face.start_t[0, k]) for k, name in enumerate(names)}
    return {"face": face.id, "generator": face.generator, "origin": record, "modes": modes}


def _given(value: int | None, key: str) -> int:
    if value is None:
        raise UserInputError(f"expected {key} as an integer, received None")
    return value


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _shown_name(filename: str | None) -> str:
    """An upload's file name as the face's origin shows it (bounded, one line)."""
    name = " ".join((filename or "upload").split()) or "upload"
    return name if len(name) <= 200 else name[:199] + "…"


def _download(data: bytes, media: str, name: str):
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(content=data, media_type=media, headers=headers)
