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
  one strength), as PNG data with the read-out;
- `POST /api/calibrate`: calibrated units of the loaded directions (renders in calibrated
  units measure each direction they use on first use, so the page need not call it);
- `POST /api/export/{image,latent,sidecar,sweep}`: downloads.

A user mistake answers 400 with `{"error": "expected ..., received ..."}`, shown in the page;
anything else answers 500 with a generic line, the traceback going to the server's log only.
"""

import base64
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ganedit.editing.service import EditingService, EditState, ServiceConfig
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
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles

    from ganedit.ui.upload import Inverter

    app = FastAPI(title="ganedit editor", docs_url=None, redoc_url=None, openapi_url=None)
    inverter = Inverter(service, int(config.max_upload_mb * 1e6))
    app.state.service, app.state.inverter = service, inverter

    @app.exception_handler(GaneditError)
    async def _user_error(request: Request, err: GaneditError):
        return JSONResponse({"error": " ".join(str(err).split())}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, err: Exception):
        log.error("internal error on %s", request.url.path, exc_info=err)
        return JSONResponse(
            {"error": "internal error (the server's log has the details)"}, status_code=500
        )

    loopback_only = is_loopback(config.host)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        name = host_name(request.headers.get("host", ""))
        if loopback_only and name not in LOOPBACK_NAMES:
            # A page elsewhere whose name resolves here (DNS rebinding) gets nothing.
            return JSONResponse(
                {"error": f"expected a request to 127.0.0.1 or localhost, received host {name!r}"},
                status_code=400,
            )
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
        }

    @app.post("/api/generator")
    def generator(body: dict):
        return describe_generator(service, _text(body, "generator"))

    @app.post("/api/boundary")
    def boundary(body: dict):
        d = service.check_boundary(_text(body, "generator"), _text(body, "path"))
        return {"accepted": d.describe()}

    @app.post("/api/face")
    def face(body: dict):
        name = _text(body, "generator")
        if body.get("bank"):
            made = service.face_from_bank(name, _text(body, "bank"), _int(body, "row"))
        else:
            made = service.face_from_seed(name, _int(body, "seed"))
        return _face_record(made)

    @app.post("/api/upload")
    async def upload(generator: str = Form(...), file: UploadFile = File(...)):
        data = await file.read(inverter.max_bytes + 1)
        made = inverter.invert(generator, data, file.filename or "upload")
        return _face_record(made)

    @app.post("/api/tune")
    def tune(body: dict):
        return inverter.start_tuning(_text(body, "face"), _int(body, "steps")).describe()

    @app.get("/api/job/{job_id}")
    def job(job_id: str):
        return inverter.job(job_id).describe()

    @app.post("/api/calibrate")
    def calibrate(body: dict):
        name = _text(body, "generator")
        wanted = body.get("directions")
        out = {}
        for d in service.directions(name)[0]:
            if isinstance(wanted, list) and d.id not in wanted:
                continue
            try:
                cal = service.calibration(name, d.id)
                per_unit = None if cal is None else cal.latent_step([1.0], bound=None)[0]
                out[d.id] = {"latent_per_unit": per_unit, "weak": False}
            except UserInputError as err:
                out[d.id] = {"latent_per_unit": None, "weak": True, "why": str(err)}
        return out

    @app.post("/api/render")
    def render(body: dict):
        began = time.perf_counter()
        face_id, state = _text(body, "face"), _state(body)
        states = [state]
        compare = body.get("compare")
        if compare:
            strength = _float(compare, "strength")
            base = EditState(modes=state.modes, layers=state.layers, units=state.units)
            for key in ("a", "b"):
                states.append(base.with_strength(_text(compare, key), strength))
        rendered = service.render(face_id, states)
        items = [{"image": _data_url(service.png(r.image)), "readout": r.readout} for r in rendered]
        return {**items[0], "compare": items[1:], "ms": 1000 * (time.perf_counter() - began)}

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
            raise UserInputError(f"expected a sweep format gif or png, received {fmt!r}")
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


def _face_record(face) -> dict:
    record = {k: v for k, v in face.origin.items() if isinstance(v, (str, int, float))}
    modes = {}
    if face.start_t is not None:
        names = face.source.mode_attributes
        modes = {name: float(face.start_t[0, k]) for k, name in enumerate(names)}
    return {"face": face.id, "generator": face.generator, "origin": record, "modes": modes}


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _text(body, key: str) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise UserInputError(f"expected {key} as a non-empty text, received {value!r}")
    return value


def _int(body, key: str) -> int:
    value = body.get(key) if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserInputError(f"expected {key} as an integer, received {value!r}")
    return value


def _float(body, key: str) -> float:
    value = body.get(key) if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(f"expected {key} as a number, received {value!r}")
    return float(value)


def _state(body: dict) -> EditState:
    state = body.get("state") or {}
    if not isinstance(state, dict):
        raise UserInputError(f"expected the state as an object, received {state!r}")
    strengths, modes = state.get("strengths") or {}, state.get("modes") or {}
    layers = state.get("layers")
    for name, value in (("strengths", strengths), ("modes", modes)):
        ok = isinstance(value, dict) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()
        )
        if not ok:
            raise UserInputError(f"expected {name} as {{name: number}}, received {value!r}")
    if layers is not None and not (
        isinstance(layers, list) and len(layers) == 2 and all(isinstance(v, int) for v in layers)
    ):
        raise UserInputError(f"expected layers as [start, stop], received {layers!r}")
    return EditState.of(strengths, modes, layers, state.get("units") or "latent")


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
