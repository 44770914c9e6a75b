"""The web editor: a FastAPI app over an `EditingService`, and the server that runs it.

The page (`static/`: plain HTML, JavaScript and CSS shipped in the package; nothing is
fetched from elsewhere, and the Content-Security-Policy header forbids it) talks to a small
JSON API:

- `GET /api/info`: generators to pick from, the one loaded, limits;
- `POST /api/generator`: load a generator; its directions (usable and refused, with why),
  modes and ws layer count;
- `POST /api/boundary`: check one more boundary file against the loaded generator;
- `POST /api/face`: draw a face from a seed or a latent bank row;
- `POST /api/upload` (multipart): invert an image with the encoder; `POST /api/tune` starts
  pivotal tuning, `GET /api/job/{id}` reports its progress;
- `POST /api/render`: the face at the sliders' state (and, side by side, two directions at
  one strength; with `start`, the face unedited too), as PNG data with the read-out;
- `POST /api/calibrate`: calibrated units of the loaded directions named in `directions`
  (all when absent; renders in calibrated units measure each direction they use on first
  use, so the page need not call it);
- `POST /api/export/{image,latent,sidecar,sweep}`: downloads.

Every request the editor refuses answers a 4xx with one line, `{"error": "expected ...,
received ..."}`, which the page shows beside what caused it: 400 for a user mistake or a
malformed request, 404/405 for a path or method the API lacks, 411/413 for a body without a
length or longer than the route takes (checked from the header, before the body is read).
Text fields are bounded (a path's names by the file system's limit), images by their header's
claimed size. Anything else answers 500 with a generic line, the traceback going to the
server's log only.
"""

import base64
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ganedit.editing.service import STRENGTH_LIMIT, EditingService, EditState, ServiceConfig
from ganedit.errors import GaneditError, UserInputError
from ganedit.utils.params import Integer, Real, check_params

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)
MAX_SWEEP_STEPS = 64


@dataclass(frozen=True)
class UIConfig:
    """What `ganedit ui` serves and where."""

    generator: str = "world64"
    boundaries: tuple[str, ...] = ()
    host: str = LOOPBACK
    port: int = 7860
    device: str = "cpu"
    max_upload_mb: float = 10.0
    evaluator: str = "evaluator"  # the read-out and calibrated units: any attribute predictor
    identity: str | None = "identity"  # the identity cosine; None: not shown

    def __post_init__(self):
        limits = {"port": Integer(0, 65535), "max_upload_mb": Real(0.001, 1000.0)}
        check_params({k: getattr(self, k) for k in limits}, limits, "ui")
        check_host(self.host)


def check_host(host: str) -> None:
    """An IP address or `localhost` (names that need a resolver are not accepted)."""
    if host == "localhost":
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UserInputError(
            f"expected --host as an IP address (127.0.0.1, ::1, 0.0.0.0, ...) or localhost, "
            f"received {host!r}"
        ) from None


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def host_name(header: str) -> str:
    """The name in a Host header, without the port (`[::1]:7860` -> `::1`)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def static_dir() -> Path:
    return Path(str(resources.files("ganedit.ui").joinpath("static")))


def available_generators() -> list[str]:
    """Registered generator names whose weights are here (the optional one if installed)."""
    from ganedit.models import registry

    names = [n for n in registry.EMBEDDED_GENERATORS if registry.generator_folder(n)]
    try:
        from ganedit.models.dcgan import weights_path

        if Path(weights_path()).is_file():
            names += list(registry.OPTIONAL_GENERATORS)
    except (GaneditError, OSError, ImportError):  # the optional package is absent: not offered
        pass
    return names


def prepare(config: UIConfig) -> tuple[EditingService, dict]:
    """The service with the generator loaded, its directions checked and one face drawn
    (so the first request renders at once); and what is loaded, for the start-up lines."""
    service = EditingService(
        ServiceConfig(
            boundaries=config.boundaries,
            device=config.device,
            evaluator=config.evaluator,
            identity=config.identity,
        )
    )
    described = describe_generator(service, config.generator)
    face = service.face_from_seed(config.generator, 0)
    service.render(face.id, [EditState()])  # warm the evaluator and identity nets
    return service, described


def describe_generator(service: EditingService, generator: str) -> dict:
    source = service.source(generator)
    usable, refused = service.directions(generator)
    g = getattr(source, "generator", None)
    num_ws = g.num_ws if "ws" in source.spaces else 0
    return {
        "generator": generator,
        "identity": {"name": source.identity["name"], "sha256": source.identity["sha256"]},
        "space": service.editing_space(source),
        "resolution": source.resolution,
        "num_ws": num_ws,
        "modes": source.mode_attributes,
        "directions": [d.describe() for d in usable],
        "refused": [{"path": r.path, "reason": r.reason} for r in refused],
        "readout": service.readout_kinds,
    }


# ------------------------------------------------------------------------------------------
# The app


def create_app(service: EditingService, config: UIConfig):
    """The FastAPI app over `service` (fastapi is imported here: the `ui` extra)."""
    from fastapi import FastAPI, File, Form, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    from ganedit.ui.upload import Uploads, check_upload_size

    app = FastAPI(title="ganedit editor", docs_url=None, redoc_url=None, openapi_url=None)
    inverter = Uploads(service, int(config.max_upload_mb * 1e6))
    app.state.service, app.state.inverter = service, inverter

    def _refusal(status: int, message: str):
        return JSONResponse({"error": one_line(message)}, status_code=status)

    @app.exception_handler(GaneditError)
    async def _user_error(request: Request, err: GaneditError):
        return _refusal(400, str(err))

    @app.exception_handler(RequestValidationError)
    async def _malformed(request: Request, err: RequestValidationError):
        return _refusal(400, validation_message(err.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, err: HTTPException):
        return _refusal(err.status_code, http_message(request, err))

    @app.exception_handler(Exception)
    async def _internal(request: Request, err: Exception):
        log.error("internal error on %s", request.url.path, exc_info=err)
        return _refusal(500, "internal error (the server's log has the details)")

    loopback_only = is_loopback(config.host)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        name = host_name(request.headers.get("host", ""))
        if loopback_only and name not in LOOPBACK_NAMES:
            # A page elsewhere whose name resolves here (DNS rebinding) gets nothing.
            response = _refusal(
                400, f"expected a request to 127.0.0.1 or localhost, received host {name!r}"
            )
        elif refused := body_refusal(request, inverter.max_bytes):
            response = _refusal(*refused)  # before a byte of the body is read
        else:
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/")
    def index():
        return FileResponse(static_dir() / "index.html")

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")

    @app.get("/api/info")
    def info():
        return {
            "generators": available_generators(),
            "generator": config.generator,
            "max_upload_mb": config.max_upload_mb,
            "max_sweep_steps": MAX_SWEEP_STEPS,
            "max_strength": STRENGTH_LIMIT,
        }

    @app.post("/api/generator")
    def generator(body: dict):
        return describe_generator(service, _path(body, "generator"))

    @app.post("/api/boundary")
    def boundary(body: dict):
        d = service.check_boundary(_path(body, "generator"), _path(body, "path"))
        return {"accepted": d.describe()}

    @app.post("/api/face")
    def face(body: dict):
        name = _path(body, "generator")
        if body.get("bank"):
            made = service.face_from_bank(name, _path(body, "bank"), _int(body, "row"))
        else:
            made = service.face_from_seed(name, _int(body, "seed"))
        return _face_record(made)

    @app.post("/api/upload")
    async def upload(generator: str = Form(...), file: UploadFile = File(...)):
        name = _path({"generator": generator}, "generator")
        check_upload_size(file.size, inverter.max_bytes)
        data = await file.read(inverter.max_bytes + 1)
        made = inverter.invert(name, data, _shown_name(file.filename))
        return _face_record(made)

    @app.post("/api/tune")
    def tune(body: dict):
        return inverter.start_tuning(_text(body, "face"), _int(body, "steps")).describe()

    @app.get("/api/job/{job_id}")
    def job(job_id: str):
        return inverter.job(_text({"job": job_id}, "job", MAX_ID)).describe()

    @app.post("/api/calibrate")
    def calibrate(body: dict):
        name = _path(body, "generator")
        out = {}
        for direction_id in _direction_ids(body, service, name):
            try:
                per_unit = None
                if service.calibration(name, direction_id) is not None:
                    per_unit = service.latent_per_unit(name, direction_id, "calibrated")
                out[direction_id] = {"latent_per_unit": per_unit, "weak": False}
            except UserInputError as err:
                out[direction_id] = {"latent_per_unit": None, "weak": True, "why": str(err)}
        return out

    @app.post("/api/render")
    def render(body: dict):
        began = time.perf_counter()
        face_id, state = _text(body, "face"), _state(body)
        states = [state]
        compare = _object(body, "compare", "{a, b, strength}")
        if compare:
            strength = _float(compare, "strength")
            base = EditState(modes=state.modes, layers=state.layers, units=state.units)
            for key in ("a", "b"):
                states.append(base.with_strength(_text(compare, key), strength))
        with_start = _flag(body, "start")  # the face unedited too (the page's start image)
        if with_start:
            states.append(EditState())
        rendered = service.render(face_id, states)
        items = [{"image": _data_url(service.png(r.image)), "readout": r.readout} for r in rendered]
        start = items.pop() if with_start else None
        out = {**items[0], "compare": items[1:], "ms": 1000 * (time.perf_counter() - began)}
        return {**out, "start": start} if with_start else out

    @app.post("/api/export/image")
    def export_image(body: dict):
        rendered = service.render(_text(body, "face"), [_state(body)])[0]
        return _download(service.png(rendered.image), "image/png", "ganedit_face.png")

    @app.post("/api/export/latent")
    def export_latent(body: dict):
        import io

        import numpy as np

        code, _ = service.latent_record(_text(body, "face"), _state(body))
        buffer = io.BytesIO()
        np.save(buffer, code)
        return _download(buffer.getvalue(), "application/octet-stream", "ganedit_latent.npy")

    @app.post("/api/export/sidecar")
    def export_sidecar(body: dict):
        import json

        _, record = service.latent_record(_text(body, "face"), _state(body))
        data = (json.dumps(record, indent=2) + "\n").encode()
        return _download(data, "application/json", "ganedit_latent.json")

    @app.post("/api/export/sweep")
    def export_sweep(body: dict):
        import tempfile

        fmt = _text(body, "format")
        if fmt not in ("gif", "png"):
            raise UserInputError(f"expected a sweep format gif or png, received {_shown(fmt)}")
        values = _sweep_values(body)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"sweep.{fmt}"
            service.export_sweep(
                _text(body, "face"), _state(body), _text(body, "slider"), values, path
            )
            data = path.read_bytes()
        return _download(data, f"image/{fmt}", f"ganedit_sweep.{fmt}")

    def _download(data: bytes, media: str, name: str):
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(content=data, media_type=media, headers=headers)

    return app


# ------------------------------------------------------------------------------------------
# Requests: bounded, checked, refused in one line

MAX_BODY_BYTES = 1_000_000  # a JSON request (the page's largest is a few kB)
UPLOAD_FORM_BYTES = 64_000  # an upload's form beside its file: the generator field, headers
MAX_TEXT = 4096  # characters of a text field (Linux's PATH_MAX)
NAME_MAX = 255  # bytes of one name in a path (Linux's NAME_MAX)
MAX_ID = 64  # characters of an id the server made (faces, jobs)
MAX_IDS = 256  # direction ids in one request
MAX_MESSAGE = 600  # characters of an error line (a received value is shown cut)
MAX_SHOWN = 80  # characters of a received value shown in a message


def one_line(message: str) -> str:
    """A message as one line of bounded length."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


def _shown(value) -> str:
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


def body_refusal(request, max_upload: int) -> tuple[int, str] | None:
    """(status, message) for a request body the server will not read: one without a length
    (411), or longer than the route takes (413: an upload's file limit plus its form, else
    `MAX_BODY_BYTES`). Checked from the header, before any of the body is read."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    declared = request.headers.get("content-length")
    if declared is None:
        return 411, "expected a request with a Content-Length header, received none"
    if not declared.isdigit() or len(declared) > 18:
        return 400, f"expected a Content-Length in bytes, received {_shown(declared)}"
    size = int(declared)
    if request.url.path == "/api/upload":
        if size > max_upload + UPLOAD_FORM_BYTES:
            return 413, (
                f"expected an image of at most {megabytes(max_upload)}, received a request "
                f"of {megabytes(size, max_upload)}"
            )
    elif size > MAX_BODY_BYTES:
        return 413, (
            f"expected a request body of at most {megabytes(MAX_BODY_BYTES)}, received "
            f"{megabytes(size, MAX_BODY_BYTES)}"
        )
    return None


def validation_message(errors) -> str:
    """FastAPI's validation errors as one `expected ..., received ...` line (the first)."""
    if not errors:
        return "expected a well-formed request, received one the server could not read"
    err = errors[0]
    kind, loc = err.get("type", ""), [str(p) for p in err.get("loc", ())]
    if kind == "json_invalid":
        why = (err.get("ctx") or {}).get("error", "")
        return f"expected a JSON object as the request body, received text that is not JSON ({why})"
    if loc == ["body"]:
        received = type(err.get("input")).__name__ if err.get("input") is not None else "none"
        return f"expected a JSON object as the request body, received {received}"
    field = loc[-1] if loc else "a field"
    if kind == "missing":
        return f"expected the field {field!r} in the request, received none"
    what = err.get("msg", "valid").lower()
    return f"expected {field} as {what}, received {_shown(err.get('input'))}"


def http_message(request, err) -> str:
    """Starlette's HTTP errors (no route, a wrong method, an unreadable form) in our words."""
    where = f"{request.method} {_shown(request.url.path)}"
    if err.status_code == 404:
        return f"expected a path of the editor's page or API, received {where}"
    if err.status_code == 405:
        return f"expected another method for this path, received {where}"
    return f"expected a well-formed request, received one the server could not read ({err.detail})"


def _face_record(face) -> dict:
    record = {k: v for k, v in face.origin.items() if isinstance(v, (str, int, float))}
    modes = {}
    if face.start_t is not None:
        names = face.source.mode_attributes
        modes = {name: float(face.start_t[0, k]) for k, name in enumerate(names)}
    return {"face": face.id, "generator": face.generator, "origin": record, "modes": modes}


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _shown_name(filename: str | None) -> str:
    """An upload's file name as the face's origin shows it (bounded, one line)."""
    name = " ".join((filename or "upload").split()) or "upload"
    return name if len(name) <= 200 else name[:199] + "…"


def _text(body, key: str, limit: int = MAX_TEXT) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise UserInputError(f"expected {key} as a non-empty text, received {_shown(value)}")
    if len(value) > limit:
        raise UserInputError(
            f"expected {key} of at most {limit} characters, received {len(value)} characters"
        )
    return value


def _path(body, key: str) -> str:
    """A registered name or a file path: a text the file system can be asked about."""
    value = _text(body, key)
    if "\x00" in value:
        raise UserInputError(
            f"expected {key} as a path without NUL bytes, received {_shown(value)}"
        )
    longest = max(len(part.encode("utf-8", "surrogatepass")) for part in value.split("/"))
    if longest > NAME_MAX:
        raise UserInputError(
            f"expected {key} as a path whose names have at most {NAME_MAX} bytes, received a "
            f"name of {longest} bytes"
        )
    return value


def _int(body, key: str) -> int:
    value = body.get(key) if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError(f"expected {key} as an integer, received {_shown(value)}")
    return value


def _float(body, key: str) -> float:
    value = body.get(key) if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(f"expected {key} as a number, received {_shown(value)}")
    return float(value)


def _flag(body, key: str) -> bool:
    value = body.get(key, False) if isinstance(body, dict) else False
    if not isinstance(value, bool):
        raise UserInputError(f"expected {key} as true or false, received {_shown(value)}")
    return value


def _object(body, key: str, what: str) -> dict | None:
    """An optional nested object (None when absent or null)."""
    value = body.get(key) if isinstance(body, dict) else None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserInputError(f"expected {key} as an object {what}, received {_shown(value)}")
    return value


def _direction_ids(body: dict, service: EditingService, generator: str) -> list[str]:
    """The request's `directions` (each one loaded for `generator`), or all when absent."""
    wanted = body.get("directions")
    if wanted is None:
        return [d.id for d in service.directions(generator)[0]]
    if not isinstance(wanted, list) or not all(isinstance(w, str) and w for w in wanted):
        raise UserInputError(
            f"expected directions as a list of direction ids, received {_shown(wanted)}"
        )
    if len(wanted) > MAX_IDS:
        raise UserInputError(f"expected at most {MAX_IDS} direction ids, received {len(wanted)}")
    ids = list(dict.fromkeys(wanted))
    for direction_id in ids:
        service.direction(generator, _text({"id": direction_id}, "id", MAX_TEXT))
    return ids


def _state(body: dict) -> EditState:
    state = body.get("state") or {}
    if not isinstance(state, dict):
        raise UserInputError(f"expected the state as an object, received {_shown(state)}")
    strengths, modes = state.get("strengths") or {}, state.get("modes") or {}
    layers = state.get("layers")
    for name, value in (("strengths", strengths), ("modes", modes)):
        ok = isinstance(value, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()
        )
        if not ok:
            raise UserInputError(f"expected {name} as {{name: number}}, received {_shown(value)}")
        if len(value) > MAX_IDS:
            raise UserInputError(f"expected at most {MAX_IDS} {name}, received {len(value)}")
    if layers is not None and not (
        isinstance(layers, list) and len(layers) == 2 and all(isinstance(v, int) for v in layers)
    ):
        raise UserInputError(f"expected layers as [start, stop], received {_shown(layers)}")
    units = state.get("units") or "latent"
    if not isinstance(units, str):
        raise UserInputError(f"expected units as latent or calibrated, received {_shown(units)}")
    return EditState.of(strengths, modes, layers, units)


def _sweep_values(body: dict) -> list[float]:
    start, end, steps = _float(body, "start"), _float(body, "end"), _int(body, "steps")
    check_params({"steps": steps}, {"steps": Integer(2, MAX_SWEEP_STEPS)}, "sweep")
    return [start + (end - start) * k / (steps - 1) for k in range(steps)]


# ------------------------------------------------------------------------------------------
# The server


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or one line on why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # No Nagle: uvicorn writes a response's headers and body separately, and a client that
    # delays its ACK would otherwise hold every update back ~40 ms (accepted sockets inherit
    # the option on Linux).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise UserInputError(
            f"expected a free port to listen on at {host}, received {port} ({err.strerror})"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def start_lines(host: str, port: int) -> list[str]:
    """What the server says when it starts: where, and who can connect."""
    shown = f"[{host}]" if ":" in host else host
    where = f"ganedit ui: http://{shown}:{port}/ (Ctrl-C stops)"
    if is_loopback(host):
        return [
            where,
            f"listening on {host} only: loopback, this machine alone can connect "
            "(--host to listen elsewhere)",
        ]
    return [
        where,
        f"listening on {host} (--host): other machines can connect; there is no authentication",
    ]


def serve(
    config: UIConfig, service: EditingService, announce=log.info, sock: socket.socket | None = None
) -> None:
    """Serve the editor until Ctrl-C (or SIGTERM); returns after a clean shutdown. `sock`: a
    socket from `bind` (bound before the models load, so a taken port fails at once)."""
    import uvicorn

    sock = sock or bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    app = create_app(service, config)
    for line in start_lines(host, port):
        announce(line)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down cleanly, then re-raised the Ctrl-C it caught
    finally:
        sock.close()
