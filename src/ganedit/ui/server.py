"""The web editor: a FastAPI app over an `EditingService`, and the server that runs it.

The page (`static/`: plain HTML, JavaScript and CSS shipped in the package; nothing is
fetched from elsewhere, and the Content-Security-Policy header forbids it) talks to a small
JSON API (its routes: `ui/routes.py`, one router per concern; each JSON body a model in
`ui/requests.py`):

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

import ipaddress
import logging
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ganedit.editing.service import EditingService, EditState, ServiceConfig
from ganedit.errors import GaneditError, UserInputError
from ganedit.ui.generators import describe_generator
from ganedit.ui.messages import megabytes, one_line, shown
from ganedit.utils.params import Integer, Real, check_params

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)


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


# ------------------------------------------------------------------------------------------
# The app


def create_app(service: EditingService, config: UIConfig):
    """The FastAPI app over `service` (fastapi is imported here: the `ui` extra)."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    from ganedit.ui.routes import ROUTERS
    from ganedit.ui.upload import Uploads

    app = FastAPI(title="ganedit editor", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service, app.state.config = service, config
    app.state.inverter = Uploads(service, int(config.max_upload_mb * 1e6))
    install_refusals(app)
    install_checks(app, is_loopback(config.host))
    app.get("/")(lambda: FileResponse(static_dir() / "index.html"))
    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app


def refusal(status: int, message: str):
    """The answer to every request the editor refuses: one JSON line."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": one_line(message)}, status_code=status)


def install_refusals(app) -> None:
    """Every error, ours, FastAPI's or unforeseen, answered as one JSON line."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from ganedit.ui.requests import validation_message

    async def user_error(request, err: GaneditError):
        return refusal(400, str(err))

    async def malformed(request, err: RequestValidationError):
        return refusal(400, validation_message(err.errors()))

    async def http(request, err: HTTPException):
        return refusal(err.status_code, http_message(request, err))

    async def internal(request, err: Exception):
        log.error("internal error on %s", request.url.path, exc_info=err)
        return refusal(500, "internal error (the server's log has the details)")

    handlers = {
        GaneditError: user_error,
        RequestValidationError: malformed,
        HTTPException: http,
        Exception: internal,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)


def install_checks(app, loopback_only: bool) -> None:
    """The host and body-length checks before a route runs; the headers on every answer."""

    @app.middleware("http")
    async def _headers(request, call_next):
        name = host_name(request.headers.get("host", ""))
        if loopback_only and name not in LOOPBACK_NAMES:
            # A page elsewhere whose name resolves here (DNS rebinding) gets nothing.
            message = f"expected a request to 127.0.0.1 or localhost, received host {name!r}"
            response = refusal(400, message)
        elif refused := body_refusal(request, request.app.state.inverter.max_bytes):
            response = refusal(*refused)  # before a byte of the body is read
        else:
            response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response


# ------------------------------------------------------------------------------------------
# Requests: bounded, checked, refused in one line (the bodies' models: ui/requests.py)

MAX_BODY_BYTES = 1_000_000  # a JSON request (the page's largest is a few kB)
UPLOAD_FORM_BYTES = 64_000  # an upload's form beside its file: the generator field, headers


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
        return 400, f"expected a Content-Length in bytes, received {shown(declared)}"
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


def http_message(request, err) -> str:
    """Starlette's HTTP errors (no route, a wrong method, an unreadable form) in our words."""
    where = f"{request.method} {shown(request.url.path)}"
    if err.status_code == 404:
        return f"expected a path of the editor's page or API, received {where}"
    if err.status_code == 405:
        return f"expected another method for this path, received {where}"
    return f"expected a well-formed request, received one the server could not read ({err.detail})"


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
