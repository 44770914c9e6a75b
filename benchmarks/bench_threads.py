"""CPU threads under load: what the thread count and OpenMP's wait policy do to ganedit's work.

Three workloads, run through the command line (`ganedit.cli.run`) in worker processes whose
environment sets the threads (OMP_NUM_THREADS, MKL_NUM_THREADS) and OMP_WAIT_POLICY before
torch loads:

- invert:    `ganedit invert` of one world64 face, --steps STEPS (projector, perceptual loss)
- generate:  `ganedit generate -n N` (synthesis + labeler scores into a bank)
- train-gan: `ganedit train-gan` for ITER iterations of a small StyleGAN2 at 32 px

One worker per configuration starts once (imports, then each workload once small, to warm
up) and then waits; the parent asks the workers for one timed run at a time, so the
configurations are interleaved (A B C D, then B C D A, ...) at every load: the machine as it
is, then with 2 and 4 busy processes (`while True: pass`) started by this script and always
stopped by it (SIGTERM included). Each cell is the median of the repeats; ratios are to
1 thread at the same load, in the same run. A run that passes --cap seconds is stopped: its
worker ends, and that configuration is not run again (at that load or a higher one).

    python benchmarks/bench_threads.py --repeats 3 --json runs/bench_threads.json
    python benchmarks/bench_threads.py --startup --baseline-src /path/to/old/src
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# (threads, OMP_WAIT_POLICY or None for the runtime's own default)
CONFIGS = [(1, None), (2, None), (2, "passive"), (2, "active")]
WORKLOADS = ("invert", "generate", "train-gan")
STOPPED, NOT_RUN = math.inf, math.nan
BASE_ENV = dict(os.environ)  # before anything here sets thread variables


def _label(config: tuple[int, str | None]) -> str:
    threads, policy = config
    return f"{threads} thread" + ("s" if threads > 1 else "") + (f", {policy}" if policy else "")


# ------------------------------------------------------------------------------------------
# The worker: one configuration, timed runs on request


def _argv(workload: str, work: Path, data: Path, size: dict, small: bool) -> list[str]:
    name = str(work / f"{workload}-{len(list(work.iterdir()))}")
    if workload == "invert":
        return ["invert", "-i", str(data / "photos"), "-g", "world64", "--steps",
                "1" if small else str(size["steps"]), "-o", name, "--no-progress"]  # fmt: skip
    if workload == "generate":
        return ["generate", "-g", "world64", "-n", "8" if small else str(size["n"]), "-o",
                name + ".zarr", "--no-progress"]  # fmt: skip
    return ["train-gan", "-i", str(data / "faces32"), "--size", "32", "--iter",
            "1" if small else str(size["iter"]), "--batch-size", "8", "--channels",
            "128,128,64,64", "--style-dim", "128", "--n-mlp", "4", "-o", name,
            "--no-progress"]  # fmt: skip


def worker(data: Path, size: dict, cap: float) -> None:
    """Warm up, say `ready`, then time one workload per line read; a run past `cap` seconds
    (a warm-up: 5 cap) is reported as stopped and ends the worker."""
    import io
    import threading
    from contextlib import redirect_stdout

    from ganedit.cli import run

    def say(message) -> None:
        sys.__stdout__.write(json.dumps(message) + "\n")
        sys.__stdout__.flush()

    def stop(name: str) -> None:
        say({name: "stopped"})
        os._exit(3)

    def timed(name: str, small: bool) -> float:
        # A warm-up loads weights and first-use code: it gets longer before it is stopped.
        watchdog = threading.Timer(cap * (5 if small else 1), stop, (name,))
        watchdog.start()
        with redirect_stdout(io.StringIO()):
            began = time.perf_counter()
            code = run(_argv(name, work, data, size, small))
            seconds = time.perf_counter() - began
        watchdog.cancel()
        if code != 0:
            raise SystemExit(f"{name} failed with exit code {code}")
        return seconds

    # What the commands import on first use: one thread either way, so no cap.
    import ganedit.inversion.run
    import ganedit.latents.generate
    import ganedit.training.gan  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in WORKLOADS:
            timed(name, small=True)
        say("ready")
        for line in sys.stdin:
            say({line.strip(): timed(line.strip(), small=False)})


# ------------------------------------------------------------------------------------------
# The parent: load, interleaving, medians


def _environment(config: tuple[int, str | None]) -> dict[str, str]:
    threads, policy = config
    env = {k: v for k, v in BASE_ENV.items() if k not in ("OMP_WAIT_POLICY", "GANEDIT_THREADS")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(SRC)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    return env


def _prepare(data: Path) -> None:
    """One world64 face to invert and 32 renders at 32 px to train on."""
    from ganedit.cli import run

    (data / "photos").mkdir()
    with contextlib.redirect_stdout(sys.stderr):
        assert run(["sample", "-n", "1", "-o", str(data / "photos" / "face.png")]) == 0
        args = ["world", "render", "-n", "32", "--size", "32", "-o", str(data / "faces32")]
        assert run([*args, "--no-progress"]) == 0


class Worker:
    def __init__(self, config, data: Path, size: dict, cap: float):
        argv = [sys.executable, __file__, "--worker", str(data), "--size", json.dumps(size),
                "--cap", str(cap)]  # fmt: skip
        self.config = config
        self.proc = subprocess.Popen(
            argv, env=_environment(config), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.alive = self._read() == "ready"

    def _read(self):
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def time(self, workload: str) -> float:
        if not self.alive:
            return NOT_RUN
        self.proc.stdin.write(workload + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if not isinstance(answer, dict) or answer.get(workload) == "stopped":
            self.alive = False
            return STOPPED
        return answer[workload]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@contextlib.contextmanager
def busy(n: int):
    """`n` processes that spin on a core each, stopped on the way out whatever happens."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def _median(values: list[float]) -> float:
    if any(math.isinf(v) for v in values):
        return STOPPED
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else NOT_RUN


def measure(args, data: Path) -> dict:
    size = {"steps": args.steps, "n": args.n, "iter": args.iter}
    workers = []
    try:
        for config in CONFIGS:  # one at a time: their imports and warm-ups do not compete
            workers.append(Worker(config, data, size, args.cap))
            print(f"{_label(config)} ready: {workers[-1].alive}", file=sys.stderr, flush=True)
        return _interleave(args, workers) | {"size": size, "cap": args.cap}
    finally:
        for w in workers:
            w.close()


def _interleave(args, workers: list[Worker]) -> dict:
    results, load_average = {}, {}
    for load in args.loads:
        load_average[load] = os.getloadavg()[0]  # the machine's own load, before ours
        runs = {w.config: {name: [] for name in WORKLOADS} for w in workers}
        with busy(load):
            for rep in range(args.repeats):
                for w in workers[rep % len(workers) :] + workers[: rep % len(workers)]:
                    for name in WORKLOADS:
                        runs[w.config][name].append(w.time(name))
                    print(f"load {load} rep {rep} {_label(w.config)}: "
                          f"{ {n: runs[w.config][n][-1] for n in WORKLOADS} }",
                          file=sys.stderr, flush=True)  # fmt: skip
        results[load] = {
            _label(c): {name: _median(r[name]) for name in WORKLOADS} for c, r in runs.items()
        }
    return {"repeats": args.repeats, "medians": results, "load_average_before": load_average}


def _cell(seconds: float, reference: float, cap: float) -> str:
    if math.isinf(seconds):
        return f"> {cap:.0f} (stopped)"
    if math.isnan(seconds):
        return "not run (stopped before)"
    if math.isfinite(reference):
        return f"{seconds:.2f} ({seconds / reference:.2f})"
    return f"{seconds:.2f}"


def table(report: dict) -> str:
    lines = [
        "| load | threads, wait policy | " + " | ".join(f"{w} s (ratio)" for w in WORKLOADS) + " |",
        "|---|---|" + "---|" * len(WORKLOADS),
    ]
    for load, cells in report["medians"].items():
        one = cells[_label(CONFIGS[0])]
        for label, seconds in cells.items():
            row = [_cell(seconds[w], one[w], report["cap"]) for w in WORKLOADS]
            lines.append(f"| {load} busy | {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Start-up: --help and a bad flag, cold and warm


STARTUP = {
    "python -c pass": ["-c", "pass"],
    "ganedit --help": ["-m", "ganedit", "--help"],
    "ganedit invert --help": ["-m", "ganedit", "invert", "--help"],
    "ganedit invert --bogus (error)": ["-m", "ganedit", "invert", "--bogus"],
}


def _files_read_at_startup(src: Path) -> list[str]:
    probe = "import sys, ganedit.cli; print('\\n'.join(getattr(m, '__file__', None) or '' for m in list(sys.modules.values())))"  # noqa: E501
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    files = [f for f in out.stdout.splitlines() if f]
    cached = []
    for f in files:  # and their bytecode
        folder = Path(f).parent / "__pycache__"
        cached += [str(p) for p in folder.glob(Path(f).stem + ".*.pyc")] if folder.is_dir() else []
    return files + cached + [sys.executable]


def _evict(files: list[str]) -> None:
    """Drop these files' pages from the page cache (only theirs: others' work is left alone)."""
    for name in files:
        with contextlib.suppress(OSError):
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _time(argv: list[str], src: Path) -> tuple[float, float]:
    """Wall seconds, and the CPU seconds of the process (what a quiet machine's wall time
    would be, near enough: start-up runs on one thread)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run([sys.executable, *argv], env=env, capture_output=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def startup(args) -> dict:
    sources = {"this tree": SRC}
    if args.baseline_src:
        sources["baseline"] = Path(args.baseline_src).resolve()
    report = {}
    for name, src in sources.items():
        files = _files_read_at_startup(src)
        runs = {what: {"cold": [], "warm": [], "cpu": []} for what in STARTUP}
        for _ in range(args.repeats):
            for what, argv in STARTUP.items():
                _evict(files)
                runs[what]["cold"].append(_time(argv, src)[0])
                wall, cpu = _time(argv, src)
                runs[what]["warm"].append(wall)
                runs[what]["cpu"].append(cpu)
        report[name] = {
            what: {k: statistics.median(v) for k, v in r.items()} for what, r in runs.items()
        }
    return report


def startup_table(report: dict) -> str:
    names = list(report)
    head = " | ".join(f"{n}: cold s | warm s | CPU s (warm)" for n in names)
    lines = [f"| command | {head} |", "|---|" + "---|---|---|" * len(names)]
    for what in STARTUP:
        cells = " | ".join(
            " | ".join(f"{report[n][what][k]:.2f}" for k in ("cold", "warm", "cpu")) for n in names
        )
        lines.append(f"| `{what}` | {cells} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------


def _stop_on_sigterm() -> None:
    """`kill` runs the `finally` blocks: the busy processes and temporary files go too."""

    def handler(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loads", type=lambda s: [int(x) for x in s.split(",")],
                        default=[0, 2, 4])  # fmt: skip
    parser.add_argument("--steps", type=int, default=3, help="invert: projector steps")
    parser.add_argument("--n", type=int, default=32, help="generate: samples")
    parser.add_argument("--iter", type=int, default=1, help="train-gan: iterations")
    parser.add_argument("--cap", type=float, default=20, help="seconds before a run is stopped")
    parser.add_argument("--startup", action="store_true", help="time start-up instead")
    parser.add_argument("--baseline-src", help="with --startup: also time this src folder")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.size, args.cap)
        return
    _stop_on_sigterm()
    began = time.perf_counter()
    if args.startup:
        report = {"startup": startup(args)}
        text = startup_table(report["startup"])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            _prepare(Path(tmp))
            report = measure(args, Path(tmp))
        text = table(report)
    report["seconds"] = time.perf_counter() - began
    report["cores"] = os.cpu_count()
    report["load_average_at_end"] = os.getloadavg()
    print(text)
    print(f"({report['seconds']:.0f} s; load average at the end {os.getloadavg()})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
