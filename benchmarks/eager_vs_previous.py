"""Eager engine speed against an earlier commit, side by side (the 1.3x budget of issue 14).

    git worktree add /tmp/previous 943fb43          # the engine before the rewrite
    python benchmarks/eager_vs_previous.py /tmp/previous W1,W1-gru,W1-rnn,W2,W4 10

For each tree, a fresh subprocess builds each workload's eager engine model and times ``steps``
training steps (one BLAS thread, freed memory kept mapped); the trees alternate, three rounds,
and the medians of the per-round medians are printed with their ratio (new / previous).
"""
import json
import statistics
import subprocess
import sys
from pathlib import Path

CODE = r"""
import sys, time, json
sys.path.insert(0, sys.argv[1] + "/benchmarks"); sys.path.insert(0, sys.argv[1])
from tinygrad_rnn.runtime import keep_freed_memory; keep_freed_memory()
import threadpoolctl; threadpoolctl.threadpool_limits(1)
from workloads import WORKLOADS, make_problem
from numpy_impls import EngineImpl
out = {}
for name in sys.argv[2].split(","):
    impl = EngineImpl(make_problem(WORKLOADS[name]))
    impl.step(); impl.step()
    ts = []
    for _ in range(int(sys.argv[3])):
        t = time.perf_counter(); impl.step(); ts.append(time.perf_counter() - t)
    ts.sort(); out[name] = ts[len(ts) // 2] * 1e3
print(json.dumps(out))
"""


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    previous, workloads, steps = sys.argv[1], sys.argv[2], sys.argv[3]
    current = str(Path(__file__).resolve().parents[1])
    results = {"previous": [], "current": []}
    for _ in range(3):
        for tree, key in ((previous, "previous"), (current, "current")):
            done = subprocess.run([sys.executable, "-c", CODE, tree, workloads, steps],
                                  capture_output=True, text=True)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return 1
            results[key].append(json.loads(done.stdout))
    for name in workloads.split(","):
        old = statistics.median(r[name] for r in results["previous"])
        new = statistics.median(r[name] for r in results["current"])
        print(f"{name}: previous {old:.2f} ms  current {new:.2f} ms  ratio {new / old:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
