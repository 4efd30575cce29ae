"""Record PyTorch optimizer / clipping / LR-schedule results as a test oracle.

Writes tests/fixtures/optim_torch.npz, read by tests/test_optim.py (which does
not need torch).  Run with a Python that has torch installed, e.g.

    /work/torchvenv2/bin/python scripts/make_optim_fixtures.py

Every case stores its inputs (initial parameters, gradient sequence,
settings as JSON) next to torch's outputs, so the test replays exactly the
same problem through tinygrad_rnn.optim.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "optim_torch.npz"
SHAPES = [(3, 4), (5,)]
STEPS = 8

OPTIMIZER_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02)),
    ("RMSprop", dict(lr=0.01, alpha=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.7, weight_decay=0.05)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.95), weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1)),
    ("AdamW", dict(lr=0.02, betas=(0.7, 0.9), weight_decay=0.3, amsgrad=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2)),
]

SCHEDULE_CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=4)),
    ("warmup_cosine", dict(warmup_steps=3, total_steps=10, start_factor=0.1, eta_min=0.002)),
]
BASE_LRS = [0.1, 0.03]
SCHEDULE_EPOCHS = 14


def flat(arrays: list) -> np.ndarray:
    return np.concatenate([np.asarray(a).ravel() for a in arrays])


def optimizer_cases(arrays: dict) -> list:
    cases = []
    for k, (name, kwargs) in enumerate(OPTIMIZER_CASES):
        for dtype in ("float64", "float32"):
            key = f"opt{k}_{dtype}"
            rng = np.random.default_rng(1000 + k)
            init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
            grads = [[(rng.standard_normal(s) * rng.uniform(0.05, 3.0)).astype(dtype) for s in SHAPES]
                     for _ in range(STEPS)]
            params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
            opt = getattr(torch.optim, name)(params, foreach=False, **kwargs)
            trajectory = []
            for step_grads in grads:
                for p, g in zip(params, step_grads):
                    p.grad = torch.from_numpy(g.copy())
                opt.step()
                trajectory.append(flat([p.detach().numpy() for p in params]))
            # All parameters are stored flattened and concatenated; shapes are in the metadata.
            arrays[f"{key}/init"] = flat(init)
            arrays[f"{key}/grads"] = np.stack([flat(g) for g in grads])
            arrays[f"{key}/trajectory"] = np.stack(trajectory)
            cases.append({"key": key, "optimizer": name, "kwargs": kwargs, "shapes": SHAPES})
    return cases


def schedule_cases(arrays: dict) -> list:
    cases = []
    for k, (name, kwargs) in enumerate(SCHEDULE_CASES):
        key = f"sched{k}"
        groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in BASE_LRS]
        opt = torch.optim.SGD(groups, lr=BASE_LRS[0])
        S = torch.optim.lr_scheduler
        if name == "warmup_cosine":
            warm = S.LinearLR(opt, start_factor=kwargs["start_factor"], end_factor=1.0,
                              total_iters=kwargs["warmup_steps"])
            cos = S.CosineAnnealingLR(opt, T_max=kwargs["total_steps"] - kwargs["warmup_steps"],
                                      eta_min=kwargs["eta_min"])
            sched = S.SequentialLR(opt, [warm, cos], milestones=[kwargs["warmup_steps"]])
        else:
            sched = getattr(S, name)(opt, **kwargs)
        lrs = []
        for _ in range(SCHEDULE_EPOCHS):
            lrs.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        arrays[f"{key}/lrs"] = np.array(lrs, dtype=np.float64)
        cases.append({"key": key, "scheduler": name, "kwargs": kwargs, "base_lrs": BASE_LRS})
    return cases


def clip_cases(arrays: dict) -> list:
    cases = []
    settings = [(0.5, 2.0), (0.5, 1.0), (0.3, math.inf), (100.0, 2.0)]
    for k, (max_norm, norm_type) in enumerate(settings):
        key = f"clip{k}"
        rng = np.random.default_rng(2000 + k)
        grads = [rng.standard_normal(s) * 3.0 for s in SHAPES]
        params = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in SHAPES]
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g.copy())
        total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        arrays[f"{key}/grads"] = flat(grads)
        arrays[f"{key}/total"] = np.array(float(total))
        arrays[f"{key}/clipped"] = flat([p.grad.numpy() for p in params])
        cases.append({"key": key, "max_norm": max_norm, "norm_type": "inf" if math.isinf(norm_type) else norm_type,
                      "shapes": SHAPES})
    return cases


def main() -> None:
    arrays: dict = {}
    meta = {
        "torch_version": torch.__version__,
        "optimizers": optimizer_cases(arrays),
        "schedules": schedule_cases(arrays),
        "clipping": clip_cases(arrays),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, torch {torch.__version__})")


if __name__ == "__main__":
    main()
