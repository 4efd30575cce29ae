"""Train a character model here, continue in PyTorch with DistributedDataParallel, come back.

1. A ``CharLM`` (Embedding -> LSTM -> Linear) trains here on the bundled names for a few hundred
   Adam steps (as ``char_names.py`` does).
2. ``torch_interop.to_torch`` turns it into a ``TorchCharLM`` with the same weights, and two CPU
   processes (``torch.multiprocessing.spawn``, the ``gloo`` backend) continue training it with
   ``DistributedDataParallel``: every step both ranks draw the same global batch and each takes
   half of it; DDP averages their gradients so the two replicas stay identical.
3. ``torch_interop.from_torch`` brings rank 0's weights back; we check that both replicas ended
   equal and that this library computes the same held-out loss as PyTorch, then sample names.

PyTorch's Adam starts with fresh moments (the optimizer state is not carried over), so expect a
small bump in the training loss right after the switch. Needs the ``torch`` extra.

    python examples/continue_in_pytorch.py                 # 300 steps here, 200 in PyTorch
    python examples/continue_in_pytorch.py --quick         # a few seconds
"""
from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import numpy as np

from _common import Timer, parser, progress_bar, report_loss
from char_names import encode_names, held_out_nll

import tinygrad_rnn as tg
from tinygrad_rnn.data import CharTokenizer, batches
from tinygrad_rnn.datasets import names
from tinygrad_rnn.generate import generate
from tinygrad_rnn.losses import cross_entropy
from tinygrad_rnn.models import CharLM
from tinygrad_rnn.optim import Adam
from tinygrad_rnn.torch_interop import TorchCharLM, from_torch, require_torch, to_torch
from tinygrad_rnn.train import fit


def free_port() -> int:
    """A TCP port nobody listens on now, for the process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world: int, port: int, workdir: str, config: dict, train_x: np.ndarray,
               train_y: np.ndarray, steps: int, batch: int, lr: float, seed: int) -> None:
    """One DDP process: load the converted weights, train ``steps`` steps on its half of every
    batch, save its final weights as ``rank{rank}.pt``."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)  # two processes on two cores
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = TorchCharLM(**config)
        model.load_state_dict(torch.load(Path(workdir) / "start.pt"))
        ddp = DistributedDataParallel(model)
        optimizer = torch.optim.Adam(ddp.parameters(), lr=lr)
        order = np.random.default_rng(seed)  # same seed on every rank: the same global batches
        for step in range(steps):
            rows = order.choice(len(train_x), size=batch, replace=False)[rank::world]  # this rank's share
            width = int((train_y[rows] != -100).sum(axis=1).max())
            x = torch.from_numpy(train_x[rows, :width])
            y = torch.from_numpy(train_y[rows, :width])
            logits, _ = ddp(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                     ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()  # DDP all-reduces (averages) the gradients here
            torch.nn.utils.clip_grad_norm_(ddp.parameters(), 1.0)
            optimizer.step()
            if rank == 0 and (step % max(1, steps // 5) == 0 or step == steps - 1):
                print(f"  [torch rank 0] step {step + 1}/{steps}: training loss {loss.item():.4f}", flush=True)
        torch.save(model.state_dict(), Path(workdir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def torch_held_out_nll(model, x: np.ndarray, y: np.ndarray) -> float:
    """The same held-out loss as ``held_out_nll``, computed by PyTorch."""
    import torch

    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(x))
        total = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1),
                                                  ignore_index=-100, reduction="sum")
    return float(total) / int((y != -100).sum())


def main() -> None:
    p = parser(__doc__.splitlines()[0], "continue_in_pytorch")
    p.add_argument("--steps-here", type=int, default=300, help="Adam steps in tinygrad_rnn")
    p.add_argument("--steps-torch", type=int, default=200, help="Adam steps in PyTorch DDP")
    p.add_argument("--world-size", type=int, default=2, help="DDP processes (CPU, gloo)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--batch", type=int, default=64, help="global batch (split across the processes)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--out", help="also save the final model here (a tinygrad_rnn checkpoint)")
    args = p.parse_args()
    torch = require_torch()
    import torch.multiprocessing as mp

    if args.quick:
        args.steps_here, args.steps_torch, args.hidden, args.embed = 40, 30, 32, 16
    if args.world_size < 1 or args.batch < args.world_size:
        p.error(f"--batch ({args.batch}) must be at least --world-size ({args.world_size}) >= 1")

    corpus = names()
    order = np.random.default_rng(args.seed).permutation(len(corpus))
    n_val = len(order) // 10
    val_words, train_words = [corpus[i] for i in order[:n_val]], [corpus[i] for i in order[n_val:]]
    tokenizer = CharTokenizer(specials=("<eos>",)).fit(corpus)
    _, train_x, train_y = encode_names(tokenizer, train_words)
    _, val_x, val_y = encode_names(tokenizer, val_words)

    # 1. here
    tg.manual_seed(args.seed)
    model = CharLM(tokenizer.vocab_size, embed=args.embed, hidden=args.hidden, cell="lstm")
    first = held_out_nll(model, val_x, val_y)
    order_rng = np.random.default_rng(args.seed)

    def train_batches():
        for bx, by in batches(train_x, train_y, batch_size=args.batch, seed=order_rng):
            width = int((by != -100).sum(axis=1).max())
            yield bx[:, :width], by[:, :width]

    with Timer() as here_time:
        fit(model, cross_entropy, Adam(model.parameters(), lr=args.lr), train_batches, epochs=10**6,
            max_steps=args.steps_here, clip=1.0, progress=progress_bar(), compile=not args.no_compile)
    after_here = held_out_nll(model, val_x, val_y)
    print(f"tinygrad_rnn: {args.steps_here} steps in {here_time.seconds:.1f} s, held-out loss "
          f"{first:.4f} -> {after_here:.4f} nats/char")
    report_loss("here", first, after_here)

    # 2. PyTorch, DistributedDataParallel over CPU processes
    theirs = to_torch(model)
    in_torch = torch_held_out_nll(theirs, val_x, val_y)
    print(f"converted to {type(theirs).__name__}: PyTorch computes the held-out loss as {in_torch:.6f} "
          f"(here {after_here:.6f})")
    with tempfile.TemporaryDirectory() as workdir, Timer() as torch_time:
        torch.save(theirs.state_dict(), Path(workdir) / "start.pt")
        print(f"continuing in PyTorch {torch.__version__}: DistributedDataParallel, {args.world_size} CPU "
              f"processes (gloo), {args.steps_torch} steps of global batch {args.batch}", flush=True)
        mp.spawn(ddp_worker, nprocs=args.world_size, join=True,
                 args=(args.world_size, free_port(), workdir, model.config, train_x, train_y, args.steps_torch,
                       args.batch, args.lr, args.seed + 1))
        replicas = [torch.load(Path(workdir) / f"rank{r}.pt") for r in range(args.world_size)]
    same = all(torch.equal(replicas[0][k], r[k]) for r in replicas[1:] for k in replicas[0])
    print(f"PyTorch: {args.steps_torch} steps in {torch_time.seconds:.1f} s (with process start-up); "
          f"replicas identical: {same}")

    # 3. back here
    theirs.load_state_dict(replicas[0])
    back = from_torch(theirs)
    after_torch = held_out_nll(back, val_x, val_y)
    torch_says = torch_held_out_nll(theirs, val_x, val_y)
    print(f"back in tinygrad_rnn: held-out loss {after_torch:.6f} nats/char (PyTorch computes {torch_says:.6f}; "
          f"difference {abs(after_torch - torch_says):.1e})")
    report_loss("ddp", after_here, after_torch)
    samples = [generate(back, tokenizer, max_len=20, temperature=0.8, seed=args.seed + k) for k in range(10)]
    print("samples: " + ", ".join(samples))
    if args.out:
        tg.save(args.out, back, config={"model": "CharLM", **back.config}, tokenizer=tokenizer,
                extra={"mode": "names", "source": "names"})
        print(f"saved {args.out} (tinygrad-rnn sample/export read it)")


if __name__ == "__main__":
    main()
