"""Side-by-side training-step benchmark: composed engine vs analytic BPTT vs PyTorch CPU.

    python benchmarks/run.py                      # every default workload, every implementation
    python benchmarks/run.py --workloads W1,W4 --repeats 10 --markdown results.md
    python benchmarks/run.py --quick              # tiny sizes, a few seconds (the smoke test)
    python benchmarks/run.py --workloads W1 --profile engine   # cProfile of one implementation

For each workload: build one problem (weights + data), check that every implementation computes
the same loss and gradients from it, then time training steps round-robin over the
implementations (the starting one rotates every repetition), so machine noise hits all of them
alike. See benchmarks/README.md for what each column means.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

from tinygrad_rnn.runtime import keep_freed_memory

from numpy_impls import NUMPY_IMPLEMENTATIONS, Implementation
from workloads import DEFAULT_WORKLOADS, WORKLOADS, Problem, Workload, make_problem, quick

try:
    import torch
    from torch_impls import TORCH_IMPLEMENTATIONS
except ImportError:  # the suite runs without torch; its columns then read "n/a"
    torch = None
    TORCH_IMPLEMENTATIONS = {}

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None

ALL_IMPLEMENTATIONS = ("engine", "compiled", "analytic", "torch-fused", "torch-composed")
REFERENCES = ("analytic", "torch-fused", "torch-composed")  # the ratio columns
NA = "n/a"


# ----- machine description and threads --------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or NA


def blas_description() -> tuple[str, int | None]:
    """A one-line description of NumPy's BLAS and the number of threads it uses (None if unknown)."""
    if threadpoolctl is not None:
        pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            p = pools[0]
            text = (f"{p.get('internal_api')} {p.get('version')}, kernel {p.get('architecture')}, "
                    f"{p.get('num_threads')} threads (threadpoolctl)")
            return text, p.get("num_threads")
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (numpy.show_config; threads unknown)", None
    except Exception:  # older NumPy without mode="dicts"
        return f"{NA} (install threadpoolctl to report it)", None


def machine_header(threads: int, blas: str) -> list[str]:
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                        "OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    lines = [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"NumPy {np.__version__}",
        f"- NumPy BLAS: {blas}",
    ]
    if torch is not None:
        lines.append(f"- PyTorch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()} "
                     f"(set to {threads} to match NumPy's BLAS)")
    else:
        lines.append("- PyTorch: not installed (torch columns read n/a)")
    lines.append("- Environment: " + (", ".join(f"{k}={v}" for k, v in env.items()) or "no BLAS/OpenMP variables set"))
    lines.append(f"- {load_line()}")
    return lines


def load_line() -> str:
    """The load average: other processes on the same cores distort timings (threaded BLAS and
    OpenMP barriers wait for a descheduled thread), so it is reported before and after the run."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return f"load average: {NA}"
    text = f"load average (1/5/15 min): {one:.2f} / {five:.2f} / {fifteen:.2f}"
    cores = os.cpu_count() or 1
    if one > cores * 0.75:
        text += (f" -- BUSY MACHINE (load above 0.75 × {cores} cores): timings are noisy, "
                 "multithreaded ones most; consider --threads 1")
    return text


def configure_threads(requested: int | None) -> tuple[int, str]:
    """Give NumPy's BLAS and torch the same thread count; returns (threads, BLAS description)."""
    if requested is not None and threadpoolctl is not None:
        threadpoolctl.threadpool_limits(requested, user_api="blas")
    blas, blas_threads = blas_description()
    threads = requested or blas_threads or os.cpu_count() or 1
    if requested is not None and threadpoolctl is None:
        blas += f" (could not limit it to {requested} threads: threadpoolctl is not installed)"
    if torch is not None:
        torch.set_num_threads(threads)
    return threads, blas


# ----- correctness -------------------------------------------------------------------------------
@dataclass
class Agreement:
    reference: str
    loss: float
    loss_diff: dict[str, float] = field(default_factory=dict)   # impl -> relative loss difference
    grad_diff: dict[str, float] = field(default_factory=dict)   # impl -> worst relative grad difference
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def relative_difference(a: np.ndarray, reference: np.ndarray) -> float:
    """max |a - ref| / max |ref|: elementwise relative errors blow up at entries near 0 in float32."""
    a = np.asarray(a, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(float(np.max(np.abs(reference))) if reference.size else 0.0, 1e-30)
    return float(np.max(np.abs(a - reference))) / scale if reference.size else 0.0


def check_agreement(results: dict[str, tuple[float, dict[str, np.ndarray]]], rtol: float) -> Agreement:
    """Compare every implementation's (loss, grads) with the analytic one (or the first)."""
    reference = "analytic" if "analytic" in results else next(iter(results))
    ref_loss, ref_grads = results[reference]
    agreement = Agreement(reference, ref_loss)
    for name, (loss, grads) in results.items():
        if not np.isfinite(loss) or not all(np.all(np.isfinite(g)) for g in grads.values()):
            agreement.problems.append(f"{name}: non-finite loss or gradient")
            continue
        if name == reference:
            continue
        if set(grads) != set(ref_grads):
            agreement.problems.append(f"{name}: gradients for {sorted(grads)}, {reference} has {sorted(ref_grads)}")
            continue
        agreement.loss_diff[name] = abs(loss - ref_loss) / max(abs(ref_loss), 1e-30)
        worst = max(((relative_difference(grads[k], ref_grads[k]), k) for k in ref_grads), default=(0.0, ""))
        agreement.grad_diff[name] = worst[0]
        if agreement.loss_diff[name] > rtol:
            agreement.problems.append(f"{name}: loss {loss!r} vs {reference} {ref_loss!r} "
                                      f"(relative difference {agreement.loss_diff[name]:.2e} > {rtol:g})")
        if worst[0] > rtol:
            agreement.problems.append(f"{name}: gradient of {worst[1]} differs from {reference}'s by "
                                      f"{worst[0]:.2e} (relative to its max) > {rtol:g}")
    return agreement


def agreement_line(name: str, a: Agreement) -> str:
    diffs = "; ".join(f"{impl} loss {a.loss_diff[impl]:.1e} grads {a.grad_diff[impl]:.1e}" for impl in a.loss_diff)
    head = f"check {name}: {'correctness check passed' if a.passed else 'correctness check FAILED'}"
    text = f"{head} (loss {a.loss:.6g}; relative differences vs {a.reference}: {diffs or 'none'})"
    if not a.passed:
        text += "\n  " + "\n  ".join(a.problems) + f"\n  skipping {name}"
    return text


# ----- timing and memory -----------------------------------------------------------------------
def time_interleaved(impls: dict[str, Implementation], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per step for each implementation; one step of each per round, the first rotating."""
    order = list(impls)
    for _ in range(warmup):
        for name in order:
            impls[name].step()
    gc.collect()
    times: dict[str, list[float]] = {name: [] for name in order}
    clock = time.perf_counter
    for r in range(repeats):
        k = r % len(order)
        for name in order[k:] + order[:k]:
            start = clock()
            impls[name].step()
            times[name].append(clock() - start)
    return times


def traced_peak(impl: Implementation) -> float:
    """Bytes: tracemalloc's peak during one step minus what was traced just before it.

    tracemalloc sees Python objects and NumPy's data buffers, not torch's allocator, so it is only
    used for the NumPy implementations, in an untimed run (tracing slows everything down)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        impl.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return float(peak - before)


def _proc_status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def rss_probe(workload_name: str, impl_name: str, is_quick: bool, threads: int | None) -> None:
    """(Subprocess mode) print, in KiB, how far the FIRST step of a fresh process raises its peak RSS.

    The peak is the kernel's high-water mark VmHWM, reset to the current RSS just before the step
    (writing 5 to /proc/self/clear_refs), so neither the setup nor the parent process (whose peak
    getrusage's ru_maxrss would inherit through fork + exec) count."""
    configure_threads(threads)
    w = WORKLOADS[workload_name]
    impl = implementation_classes()[impl_name](make_problem(quick(w) if is_quick else w))
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _proc_status_kib("VmRSS")
    impl.step()
    print(_proc_status_kib("VmHWM") - before)


def first_step_rss(workload_name: str, impl_name: str, is_quick: bool, threads: int,
                   malloc_default: bool) -> float | None:
    """Bytes, from :func:`rss_probe` run in a subprocess (None if it failed); the subprocess gets
    the same malloc setting as this run."""
    cmd = [sys.executable, os.path.abspath(__file__), "--rss-probe", workload_name, impl_name,
           "--threads", str(threads)] + (["--quick"] if is_quick else []) \
        + (["--malloc-default"] if malloc_default else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return float(done.stdout.strip().splitlines()[-1]) * 1024
    except (ValueError, IndexError):
        print(f"  (RSS probe of {impl_name} on {workload_name} failed: {done.stderr.strip()[-300:]})")
        return None


# ----- the table -------------------------------------------------------------------------------
@dataclass
class Row:
    workload: Workload
    impl: str
    times: list[float]
    traced: float | None = None
    rss: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _mib(n: float | None) -> str:
    return NA if n is None else f"{n / 2**20:.2f}"


def format_table(rows: list[Row], with_rss: bool) -> str:
    headers = ["workload", "implementation", "median ms/step", "min–max ms", "tokens/s",
               *(f"× {ref}" for ref in REFERENCES), "peak traced MiB"]
    if with_rss:
        headers.append("first-step peak RSS MiB")
    medians = {(r.workload.name, r.impl): r.median for r in rows}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        cells = [f"{r.workload.name} ({r.workload.sizes()})", r.impl, _ms(r.median),
                 f"{_ms(min(r.times))}–{_ms(max(r.times))}", f"{r.workload.tokens_per_step / r.median:,.0f}"]
        for ref in REFERENCES:
            base = medians.get((r.workload.name, ref))
            cells.append(NA if base is None else f"{r.median / base:.2f}")
        cells.append(_mib(r.traced))
        if with_rss:
            cells.append(_mib(r.rss))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


LEGEND = (
    "Times are one training step (forward over T + loss + backward to every parameter), median of "
    "the timed repetitions after warm-up, implementations interleaved round-robin. tokens/s = "
    "batch × T / median. '× X' = this row's median / X's median on the same workload (> 1: slower "
    "than X). 'peak traced MiB' = tracemalloc peak during one untimed step minus what was live "
    "before it: Python objects and NumPy buffers only, so n/a for torch. 'first-step peak RSS "
    "MiB' (--rss) = how far the first step of a fresh subprocess raises the kernel's peak "
    "resident set size (VmHWM, reset just before the step): comparable across all "
    "implementations, includes one-off lazy allocations, misses memory the allocator reused."
)


# ----- driver ----------------------------------------------------------------------------------
def implementation_classes() -> dict[str, type]:
    return {**NUMPY_IMPLEMENTATIONS, **TORCH_IMPLEMENTATIONS}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                   help=f"comma-separated, from {', '.join(WORKLOADS)} (default: %(default)s)")
    p.add_argument("--impl", default=",".join(ALL_IMPLEMENTATIONS),
                   help="comma-separated implementations (default: %(default)s; torch ones are "
                        "skipped when torch is not installed)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repetitions per implementation (default: per workload, 5 to 50)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per implementation first")
    p.add_argument("--quick", action="store_true", help="tiny sizes and 3 repeats (smoke test)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for NumPy's BLAS (needs threadpoolctl) and torch; default: what "
                        "NumPy's BLAS uses, else os.cpu_count()")
    p.add_argument("--rtol", type=float, default=1e-4,
                   help="correctness tolerance on loss and gradients, relative (default: %(default)g)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rss", action="store_true",
                   help="also measure first-step peak-RSS growth of every implementation in subprocesses")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc measurement")
    p.add_argument("--markdown", metavar="PATH", help="also write the header and table to PATH")
    p.add_argument("--profile", metavar="IMPL",
                   help="instead of the table, print a cProfile of IMPL's steps (top 25 by tottime)")
    p.add_argument("--malloc-default", action="store_true",
                   help="leave glibc's malloc settings alone (by default the runner keeps freed "
                        "heap mapped between steps, for every implementation alike: "
                        "tinygrad_rnn.runtime.keep_freed_memory)")
    p.add_argument("--rss-probe", nargs=2, metavar=("WORKLOAD", "IMPL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    args.impl = [i.strip() for i in args.impl.split(",") if i.strip()]
    for w in args.workloads:
        if w not in WORKLOADS:
            p.error(f"--workloads: unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for i in args.impl + ([args.profile] if args.profile else []):
        if i not in ALL_IMPLEMENTATIONS:
            p.error(f"--impl/--profile: unknown implementation {i!r}; choose from {', '.join(ALL_IMPLEMENTATIONS)}")
    for name in ("repeats", "warmup", "threads"):
        value = getattr(args, name)
        if value is not None and value < (1 if name != "warmup" else 0):
            p.error(f"--{name} must be >= {1 if name != 'warmup' else 0}, got {value}")
    return args


def profile(impl: Implementation, steps: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        impl.step()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rss_probe:
        if not args.malloc_default:
            keep_freed_memory()
        rss_probe(*args.rss_probe, args.quick, args.threads)
        return 0
    threads, blas = configure_threads(args.threads)
    kept = False if args.malloc_default else keep_freed_memory()
    available = implementation_classes()
    impl_names = [i for i in args.impl if i in available]
    missing = [i for i in args.impl if i not in available]

    header = ["## Machine", *machine_header(threads, blas),
              "- malloc: " + ("freed heap kept mapped between steps (keep_freed_memory), same for "
                              "every implementation" if kept else "glibc defaults (heap trimmed after each step)")]
    print("\n".join(header))
    if missing:
        print(f"(not run, torch is not importable: {', '.join(missing)})")
    if not impl_names:
        print("no implementation to run")
        return 1

    if args.profile:
        if args.profile not in available:
            print(f"--profile: {args.profile} is not available (torch missing?)")
            return 1
        for name in args.workloads:
            w = quick(WORKLOADS[name]) if args.quick else WORKLOADS[name]
            impl = available[args.profile](make_problem(w, args.seed))
            impl.step()  # warm-up outside the profile
            steps = args.repeats or min(w.repeats, 10)
            print(f"\n## cProfile: {args.profile} on {name} ({w.sizes()}), {steps} steps, top 25 by tottime\n")
            print(profile(impl, steps))
        return 0

    rows: list[Row] = []
    failed: list[str] = []
    for name in args.workloads:
        w = quick(WORKLOADS[name]) if args.quick else WORKLOADS[name]
        problem: Problem = make_problem(w, args.seed)
        sizes = f"quick sizes: {w.sizes()}" if args.quick else w.sizes()
        print(f"\n{name}: {w.description} [{sizes}]")
        results = {i: available[i](problem).loss_and_grads() for i in impl_names}
        agreement = check_agreement(results, args.rtol)
        print(agreement_line(name, agreement))
        if not agreement.passed:
            failed.append(name)
            continue
        impls = {i: available[i](problem) for i in impl_names}
        repeats = args.repeats or w.repeats
        started = time.perf_counter()
        times = time_interleaved(impls, args.warmup, repeats)
        print(f"  timed {repeats} interleaved repetitions after {args.warmup} warm-up "
              f"in {time.perf_counter() - started:.1f} s")
        for i in impl_names:
            row = Row(w, i, times[i])
            if not args.no_memory and i in NUMPY_IMPLEMENTATIONS:
                row.traced = traced_peak(impls[i])
            if args.rss:
                row.rss = first_step_rss(name, i, args.quick, threads, args.malloc_default)
            rows.append(row)
        del impls

    table = format_table(rows, args.rss)
    header.append(f"- at the end: {load_line()}")
    print("\n## Results\n\n" + table + "\n\n" + LEGEND + f"\n\nAt the end: {load_line()}")
    if failed:
        print(f"\ncorrectness check FAILED for: {', '.join(failed)} (not timed)")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(header) + "\n\n## Results\n\n" + table + "\n\n" + LEGEND + "\n")
            if failed:
                f.write(f"\ncorrectness check FAILED for: {', '.join(failed)} (not timed)\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
