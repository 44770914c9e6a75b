"""The app, its command groups, the root options (-v, --version, --threads) and logging."""

from __future__ import annotations

import logging
import sys

import typer

from ganedit import __version__
from ganedit.utils import threads as cpu_threads

app = typer.Typer(
    help="ganedit: controllable editing of pretrained GANs.",
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


world_app = typer.Typer(
    help="The synthetic face world: render data sets and contact sheets.", no_args_is_help=True
)
app.add_typer(world_app, name="world")
bank_app = typer.Typer(
    help="Latent banks: export to and import from the reference .npy files.", no_args_is_help=True
)
app.add_typer(bank_app, name="bank")

log = logging.getLogger("ganedit")


LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _HeldBack(logging.Handler):
    """The warnings of a run in the default mode, printed once the command has finished: a
    user mistake then prints only its one line, whatever was logged before it was found
    (-v and -vv print the diary as it is written)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def let_go(self, show: bool) -> None:
        records, self.records = self.records, []
        for record in records if show else ():
            sys.stderr.write(self.format(record) + "\n")


_HELD = _HeldBack()


def _setup_logging(verbose: int) -> None:
    # Warnings by default: the terminal gets the command's summary, not the library's diary.
    if verbose == 0:
        logging.basicConfig(level=logging.WARNING, handlers=[_HELD], force=True)
        return
    logging.basicConfig(
        level=logging.INFO if verbose == 1 else logging.DEBUG,
        format=LOG_FORMAT,
        stream=sys.stderr,
        force=True,  # the stream of this run (in-process callers swap sys.stderr)
    )


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More logging: -v progress notes, -vv debug."
    ),
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        max=cpu_threads.MAX_THREADS,
        help=f"CPU threads for torch and BLAS; also {cpu_threads.ENV} (default: "
        "OMP_NUM_THREADS if set, else every core this process may use; docs/cli.md).",
    ),
) -> None:
    _setup_logging(verbose)
    cpu_threads.use_threads(cpu_threads.requested_threads(threads))  # before torch loads
    if version:
        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()
