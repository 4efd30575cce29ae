"""Leak test: after many training steps the number of live graph nodes
(``tinygrad_rnn.engine.live_node_count``) and the process's resident memory return to a flat line.

Each run is a fresh interpreter (so nothing else in the test session moves the numbers) that
trains a small character LSTM with Adam and gradient clipping, eagerly or through
``tinygrad_rnn.compile``, and prints the node count and RSS (``/proc/self/statm``) every 50 steps.
A deliberately leaky loop (``backward(retain_graph=True)`` and every step's loss kept in a list,
so every step's graph stays reachable) must be caught by the same measurements, so the check can fail.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 400, 50

SCRIPT = r"""
import json, os, sys
import numpy as np
import tinygrad_rnn as tg
from tinygrad_rnn import functional as F, nn, optim
from tinygrad_rnn.engine import live_node_count

mode, steps, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tg.manual_seed(0)
vocab, T, N = 20, 16, 8

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.lstm = nn.LSTM(16, 64, batch_first=True)
        self.head = nn.Linear(64, vocab)
    def forward(self, ids):
        out, _ = self.lstm(self.embed(ids))
        return self.head(out)

model = Model()
opt = optim.Adam(model.parameters(), lr=1e-3)
rng = np.random.default_rng(0)
kept = []

def step(x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x).reshape(N * T, vocab), y.reshape(-1))
    loss.backward(retain_graph=mode == "leaky")   # leaky: the whole graph survives backward
    optim.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss

run = tg.compile(step) if mode == "compiled" else step

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

baseline = live_node_count()
points = []
for k in range(1, steps + 1):
    ids = (rng.integers(0, vocab, size=(N, 1)) + np.arange(T + 1)) % vocab   # learnable: +1 each step
    loss = run(ids[:, :-1], ids[:, 1:])
    value = float(loss.data)
    if mode == "leaky":
        kept.append(loss)            # with retain_graph, every step's graph stays reachable
    del loss
    if k % every == 0:
        points.append({"step": k, "nodes": live_node_count() - baseline, "rss": rss(), "loss": value})
print(json.dumps(points))
"""


def measure(mode):
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(STEPS), str(EVERY)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def flat(points, key, tolerance):
    """After the first half (warm-up: caches, optimizer state, the allocator's arenas), the value
    moves by at most ``tolerance`` from its level at mid-run."""
    half = points[len(points) // 2 - 1][key]
    return all(abs(p[key] - half) <= tolerance for p in points[len(points) // 2:])


MB = 2 ** 20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident memory is read from /proc (Linux)")
@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_training_steps_leave_no_graph_nodes_and_flat_memory(mode):
    points = measure(mode)
    assert all(p["nodes"] == 0 for p in points), [p["nodes"] for p in points]
    assert flat(points, "rss", 4 * MB), [round(p["rss"] / MB, 1) for p in points]
    assert points[-1]["loss"] < points[0]["loss"]  # it did train


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="resident memory is read from /proc (Linux)")
def test_the_same_measurements_catch_a_loop_that_keeps_its_graphs():
    points = measure("leaky")
    nodes = [p["nodes"] for p in points]
    assert all(b > a for a, b in zip(nodes, nodes[1:])), nodes   # grows with every step kept
    assert not flat(points, "rss", 4 * MB), [round(p["rss"] / MB, 1) for p in points]
