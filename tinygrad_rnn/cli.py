"""The ``tinygrad-rnn`` command: ``train``, ``sample``, ``graph``, ``export`` and ``check``.

``tinygrad-rnn train`` with no arguments trains a character-level LSTM on the bundled first names,
prints its held-out loss next to a bigram baseline and ten sampled names, and writes a checkpoint.
Every user error ends with a one-line message on stderr and a non-zero exit code.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = [
    "main", "entry", "build_parser", "CLIError", "cmd_train", "cmd_sample", "cmd_graph", "cmd_check",
    "cmd_export", "last_path", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED",
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A problem with the user's input: printed as one line, exit code 1."""


# ----- train -------------------------------------------------------------------------------------
def _names_data(tokenizer: Any, names: list[str], batch_size: int, seed: int):
    """Each name becomes ``<eos> n a m e <eos>``: inputs all but the last id, targets all but the
    first; padded targets are ignored (-100) so they add nothing to the loss."""
    from .data.text import batches

    eos = tokenizer.eos_id
    seqs = [np.concatenate([[eos], tokenizer.encode(n), [eos]]) for n in names]
    length = max(len(s) for s in seqs) - 1
    x = np.full((len(seqs), length), eos, dtype=np.int64)
    y = np.full((len(seqs), length), -100, dtype=np.int64)
    for i, s in enumerate(seqs):
        x[i, :len(s) - 1] = s[:-1]
        y[i, :len(s) - 1] = s[1:]
    epoch_rng = np.random.default_rng(seed)

    def train_batches():
        for bx, by in batches(x, y, batch_size=batch_size, shuffle=True, seed=epoch_rng):
            used = int((by != -100).sum(axis=1).max())  # trim columns that are padding everywhere
            yield bx[:, :used], by[:, :used]
    return seqs, train_batches, (x, y)


def _prepare(args: argparse.Namespace, tokenizer: Any = None, seq_len_given: bool = False) -> dict:
    """Load the corpus, fit (or reuse) the tokenizer, and build train/validation batches.

    ``--seq-len`` given on the command line must fit the text (and is an error for names, which
    are trained whole); the default (or a resumed run's value) is shortened to fit, with a note.
    """
    from .data.text import CharTokenizer, lm_batches
    from .data.datasets import load_text, names

    rng = np.random.default_rng(args.seed)
    if args.data is None:
        if seq_len_given:
            raise CLIError(f"--seq-len {args.seq_len} applies only with --data: names are trained whole, "
                           "one name per sequence; leave it out")
        corpus = names()
        order = rng.permutation(len(corpus))
        n_val = max(1, int(len(corpus) * 0.1))
        val_names = [corpus[i] for i in order[:n_val]]
        train_names = [corpus[i] for i in order[n_val:]]
        if tokenizer is None:
            tokenizer = CharTokenizer(specials=("<eos>",)).fit(train_names + val_names)
        train_seqs, train_batches, _ = _names_data(tokenizer, train_names, args.batch_size, args.seed)
        val_seqs, _, (vx, vy) = _names_data(tokenizer, val_names, args.batch_size, args.seed)
        return dict(mode="names", tokenizer=tokenizer, train=train_batches, val=[(vx, vy)],
                    stateful=False, train_seqs=train_seqs, val_seqs=val_seqs, source="names")
    text = load_text(args.data)
    if len(text) < 200:
        raise CLIError(f"--data {args.data}: the text has {len(text)} characters; need at least 200")
    if tokenizer is None:
        tokenizer = CharTokenizer(specials=("<eos>",), unknown="unk").fit(text)
    else:  # resumed: a names model's tokenizer has no <unk> for characters it never saw
        missing = _unknown_chars(tokenizer, text)
        if missing:
            raise CLIError(f"--data {args.data}: the vocabulary of --resume {args.resume} does not cover this "
                           f"text ({_describe_chars(missing)} not among its {len(tokenizer.chars)} characters "
                           f"{_vocabulary(tokenizer)}); train a new model on it instead")
    ids = tokenizer.encode(text)
    split = int(len(ids) * 0.9)
    train_ids, val_ids = ids[:split], ids[split:]
    # Each split must hold two chunks of seq_len + 1 ids; the validation split is the shorter.
    longest = max(1, (min(len(train_ids), len(val_ids)) - 2) // 2)
    seq_len = min(args.seq_len, longest)
    if seq_len < args.seq_len:
        if seq_len_given:
            raise CLIError(f"--seq-len {args.seq_len} is too long for --data {args.data}: its validation "
                           f"split ({len(val_ids)} characters) allows at most --seq-len {longest}")
        print(f"note: --seq-len {args.seq_len} is too long for the {len(val_ids)}-character validation "
              f"split of {args.data}; using {seq_len}", flush=True)
    for part, name in ((train_ids, "training"), (val_ids, "validation")):
        if len(part) < 2 * seq_len + 2:
            raise CLIError(f"--data {args.data}: the {name} split is too short for --seq-len {args.seq_len}")
    # Each of the `batch` streams needs seq_len + 1 ids (inputs plus the shifted targets).
    batch = max(1, min(args.batch_size, len(train_ids) // (seq_len + 1)))
    return dict(mode="text", tokenizer=tokenizer, stateful=True, source=str(args.data), first_char=text[0],
                train=lambda: lm_batches(train_ids, batch, seq_len),
                val=lambda: lm_batches(val_ids, 1, seq_len),
                train_seqs=[train_ids], val_seqs=[val_ids])


def _loss_fn(logits: Any, y: Any) -> Any:
    from .train.losses import cross_entropy
    return cross_entropy(logits, y)


def _held_out_loss(model: Any, val: Any, stateful: bool) -> float:
    """Token-weighted mean cross-entropy (nats per predicted character)."""
    from .train.losses import cross_entropy
    from .autograd.tensor import no_grad

    model.eval()
    total, count, state = 0.0, 0, None
    with no_grad():
        for x, y in (val() if callable(val) else val):
            logits, new_state = model(x, state)
            state = new_state if stateful else None
            total += float(cross_entropy(logits, y, reduction="sum").item())
            count += int((np.asarray(y) != -100).sum())
    model.train()
    return total / count


def cmd_train(args: argparse.Namespace) -> int:
    """Train a character model (``tinygrad-rnn train``); the exit code."""
    from .train import checkpoints as io
    from .baselines import bigram_nll
    from .models import CharLM
    from .train.optim import Adam
    from .random import manual_seed
    from .train import DivergenceError, fit

    resumed = None
    if args.resume is not None:
        resumed = io.load(args.resume)
        if (resumed.metadata.get("config") or {}).get("model") != "CharLM":
            raise CLIError(f"--resume {args.resume}: not a CharLM checkpoint written by 'tinygrad-rnn train'")
    lr_given = args.lr is not None
    seq_len_given = args.seq_len is not None
    _resolve_options(args, resumed)
    for name in ("hidden", "layers", "embed", "seq_len", "batch_size"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps is not None and args.steps < 1:
        raise CLIError(f"--steps must be >= 1, got {args.steps}")
    if args.epochs is not None and args.epochs < 1:
        raise CLIError(f"--epochs must be >= 1, got {args.epochs}")
    _check_finite(args.lr, "--lr", positive=True)
    if args.clip is not None:
        _check_finite(args.clip, "--clip", positive=True)
    # Checked now, not when sampling after the whole training run.
    if args.n < 0:
        raise CLIError(f"--n must be >= 0, got {args.n}")
    _check_finite(args.temperature, "--temperature")
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise CLIError(f"--out {out} is a directory; give a file path")
    manual_seed(args.seed)

    if resumed is not None:
        meta = resumed.metadata
        extra = meta.get("extra") or {}
        if args.data is None and extra.get("source") not in (None, "names"):
            args.data = extra["source"]
        tokenizer = _tokenizer_from(meta, args.resume)
        model = CharLM(**{k: v for k, v in meta["config"].items() if k != "model"})
    else:
        tokenizer = None
    data = _prepare(args, tokenizer, seq_len_given)
    tokenizer = data["tokenizer"]
    if resumed is None:
        model = CharLM(tokenizer.vocab_size, embed=args.embed, hidden=args.hidden, layers=args.layers,
                       cell=args.cell)
    optimizer = Adam(model.parameters(), lr=args.lr)
    start_step = 0
    if resumed is not None:
        io.load(args.resume, model=model, optimizer=optimizer, restore_rng=True)  # restores its lr too
        start_step = int(resumed.metadata.get("step") or 0)
        if lr_given:
            for group in optimizer.param_groups:
                group["lr"] = args.lr
        args.lr = optimizer.param_groups[0]["lr"]

    config = {"model": "CharLM", **model.config}
    extra = {"source": data["source"], "mode": data["mode"],
             "options": {name: getattr(args, name) for name in RUN_OPTIONS}}  # reused by --resume
    if data["mode"] == "text":
        extra["first_char"] = data["first_char"]  # where sampling starts when the text has no newline

    last = last_path(out)

    wrote_best: list[int] = []

    def save(history: Any) -> None:
        # fit calls this when the validation loss improves and on Ctrl-C; the state at a Ctrl-C
        # is unvalidated, so it goes beside --out and never replaces the best checkpoint.
        io.save(last if history.interrupted else out, model, optimizer, config=config, tokenizer=tokenizer,
                step=history.steps, extra={**extra, "history": history.to_dict()})
        if not history.interrupted:
            wrote_best.append(history.steps)

    # A resumed run only replaces --out with a model better than the best its earlier part saw.
    best_before = _resumed_best(resumed)

    if args.steps is None and args.epochs is None:
        args.steps = DEFAULT_STEPS
    epochs = args.epochs if args.epochs is not None else 10**9
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"training a {model.config['layers']}-layer "
          f"{model.config['cell'].upper()} (hidden {model.config['hidden']}, "
          f"{model.num_parameters():,} parameters) on {data['source']} "
          f"({'names' if data['mode'] == 'names' else 'characters'}, vocabulary {tokenizer.vocab_size})",
          flush=True)
    started = time.perf_counter()
    try:
        history = fit(model, _loss_fn, optimizer, data["train"], val_data=data["val"], epochs=epochs,
                      max_steps=args.steps, clip=args.clip, checkpoint=save, progress=not args.quiet,
                      stateful=data["stateful"], start_step=start_step, best_val_loss=best_before,
                      max_loss=DIVERGENCE_FACTOR * math.log(tokenizer.vocab_size),
                      compile=not args.no_compile)
    except DivergenceError as exc:
        raise CLIError(_divergence_message(exc, args, out, tokenizer.vocab_size, wrote_best)) from None
    seconds = time.perf_counter() - started
    if history.interrupted:
        best = f"best checkpoint {out} left as it was" if out.exists() else f"no checkpoint at {out} yet"
        print(f"interrupted after {history.steps} steps: state saved to {last} (continue with --resume {last}); "
              f"{best}", file=sys.stderr)
        return EXIT_INTERRUPTED

    # Report the best checkpoint (the one kept), not whatever the last epoch left in memory.
    if wrote_best:
        io.load(out, model=model)
    else:
        print(f"no validation loss below the resumed run's best ({best_before:.4f}): {out} was not "
              f"written by this run; the figures below are the final model's", file=sys.stderr)
    held_out = _held_out_loss(model, data["val"], data["stateful"])
    baseline = bigram_nll(data["train_seqs"], data["val_seqs"], tokenizer.vocab_size)
    print(f"trained {history.steps - start_step} steps in {seconds:.1f} s")
    print(f"held-out loss: {held_out:.4f} nats/char (bigram baseline: {baseline:.4f} nats/char)")
    kind = "names" if data["mode"] == "names" else "samples"
    print(f"{args.n} sampled {kind} (temperature {args.temperature}):")
    for i in range(args.n):
        text = _sample(model, tokenizer, extra, "", max_len=30 if data["mode"] == "names" else 200,
                       temperature=args.temperature, top_k=None, seed=args.seed + i)
        print(f"  {text}")
    print(f"checkpoint: {out}")
    return 0


DEFAULT_STEPS = 3000
#: train's options (parsed as None when not given) and their defaults. With --resume the
#: model-defining ones come from the checkpoint's config and the others from its
#: extra["options"] (the defaults for checkpoints without them), unless given explicitly.
MODEL_OPTIONS = {"cell": "lstm", "hidden": 128, "layers": 1, "embed": 32}
RUN_OPTIONS = {"seq_len": 64, "batch_size": 64, "lr": 3e-3, "clip": 1.0, "seed": 0}


#: train stops when a batch's loss exceeds this many times ln V, the loss of uniform guessing over
#: the V symbols: an untrained model starts near ln V, so such a loss only comes from divergence.
DIVERGENCE_FACTOR = 10


def _divergence_message(exc: Any, args: argparse.Namespace, out: Path, vocab_size: int,
                        wrote_best: list[int]) -> str:
    """One line: the step, what went wrong, the likely cause and what happened to --out."""
    if not math.isfinite(exc.loss):
        what = f"the loss is {exc.loss}"
    elif exc.grad_norm is None:
        what = (f"the loss {exc.loss:.4g} is over {DIVERGENCE_FACTOR}x that of uniform guessing "
                f"(ln {vocab_size} = {math.log(vocab_size):.2f})")
    else:
        what = f"the gradient norm is {exc.grad_norm}"
    if wrote_best:
        kept = f"{out} holds the best model, from step {wrote_best[-1]}"
    elif out.exists():
        kept = f"{out} left as it was"
    else:
        kept = f"no checkpoint written to {out}"
    return (f"training diverged at step {exc.step}: {what}; the learning rate (--lr {args.lr:g}) is "
            f"likely too high, try a smaller --lr; {kept}")


def _resolve_options(args: argparse.Namespace, resumed: Any = None) -> None:
    """Replace the train options left as None by the resumed checkpoint's values, else the
    defaults; a model-defining option that contradicts the checkpoint is an error."""
    config = resumed.metadata.get("config") or {} if resumed is not None else {}
    saved = ((resumed.metadata.get("extra") or {}).get("options") or {}) if resumed is not None else {}
    for name, default in MODEL_OPTIONS.items():
        given = getattr(args, name)
        if resumed is None:
            setattr(args, name, default if given is None else given)
            continue
        if given is not None and given != config.get(name):
            raise CLIError(f"--{name} {given} does not match the {name} {config.get(name)!r} of --resume "
                           f"{args.resume}; leave it out when resuming")
        setattr(args, name, config.get(name))
    names_mode = resumed is not None and (resumed.metadata.get("extra") or {}).get("mode") == "names"
    for name, default in RUN_OPTIONS.items():
        given = getattr(args, name)
        if given is None:
            setattr(args, name, saved.get(name, default))
        elif name == "seed" and names_mode and "seed" in saved and given != saved["seed"]:
            # The seed draws the train/validation split of the names: another one would validate
            # on names the model already trained on.
            raise CLIError(f"--seed {given} does not match the seed {saved['seed']} of --resume "
                           f"{args.resume}, which drew its train/validation split; leave it out when resuming")


def _resumed_best(resumed: Any) -> float:
    """The best validation loss recorded in a resumed checkpoint's history (inf if none)."""
    if resumed is None:
        return math.inf
    history = (resumed.metadata.get("extra") or {}).get("history") or {}
    best = history.get("best_val_loss")
    return float(best) if isinstance(best, (int, float)) and math.isfinite(best) else math.inf


def last_path(out: Path) -> Path:
    """Where train saves the state at a Ctrl-C: ``model.safetensors`` -> ``model.last.safetensors``."""
    return out.with_name(f"{out.stem}.last{out.suffix}")


def _check_finite(value: float, option: str, positive: bool = False) -> None:
    """Reject inf, nan and negative values (and 0 when ``positive``) of a float option."""
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise CLIError(f"{option} must be a finite number {'> 0' if positive else '>= 0'}, got {value}")


def _unknown_chars(tokenizer: Any, text: str) -> list[str]:
    """The distinct characters of ``text`` outside the tokenizer's vocabulary, in code-point order."""
    return sorted(set(text) - set(tokenizer.chars or ()))


def _describe_chars(chars: Sequence[str], limit: int = 5) -> str:
    """``'J', 'Q'`` or, for many, the first ``limit`` of them and a count of the rest."""
    shown = ", ".join(repr(c) for c in chars[:limit])
    return shown if len(chars) <= limit else f"{shown} and {len(chars) - limit} more"


def _vocabulary(tokenizer: Any, limit: int = 40) -> str:
    """The tokenizer's characters as one quoted string (``'abc...z'``), cut after ``limit``."""
    chars = tokenizer.chars or []
    shown = repr("".join(chars[:limit]))
    return shown if len(chars) <= limit else f"{shown} and {len(chars) - limit} more"


def _tokenizer_from(meta: dict, path: Any) -> Any:
    from .data.text import CharTokenizer

    state = meta.get("tokenizer")
    if not isinstance(state, dict):
        raise CLIError(f"{path}: the checkpoint holds no tokenizer; it was not written by 'tinygrad-rnn train'")
    try:
        return CharTokenizer.from_dict(state)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{path}: invalid tokenizer in checkpoint ({exc})") from None


# ----- sample ------------------------------------------------------------------------------------
def _sample(model: Any, tokenizer: Any, extra: dict, prime: str, max_len: int, temperature: float,
            top_k: int | None, seed: int | None) -> str:
    """One sample as printed: ``prime`` plus its continuation.

    Names models start from ``<eos>`` and stop at it. Text models never saw ``<eos>`` (it is not
    in the training stream), so they are fed ``prime`` alone and draw ``max_len`` characters;
    without a prime they start after a newline when the vocabulary has one (not printed), else
    from the first character of the training text (printed).
    """
    from .data.generate import generate

    if extra.get("mode", "names") == "names":
        return prime + generate(model, tokenizer, prime=prime, max_len=max_len, temperature=temperature,
                                top_k=top_k, seed=seed)
    start, shown = prime, prime
    if not prime:
        chars = tokenizer.chars or []
        first = extra.get("first_char")
        if "\n" in chars:
            start = "\n"
        else:  # checkpoints saved without first_char start from the lowest character
            start = shown = first if isinstance(first, str) and first in chars else chars[0]
    return shown + generate(model, tokenizer, prime=start, max_len=max_len, temperature=temperature,
                            top_k=top_k, seed=seed, use_end_token=False)


def cmd_sample(args: argparse.Namespace) -> int:
    """Sample from a checkpoint (``tinygrad-rnn sample``); the exit code."""
    from .train import checkpoints as io
    from .models import CharLM

    if args.n < 1:
        raise CLIError(f"--n must be >= 1, got {args.n}")
    _check_finite(args.temperature, "--temperature")
    checkpoint = io.load(args.checkpoint)
    config = checkpoint.metadata.get("config") or {}
    if config.get("model") != "CharLM":
        raise CLIError(f"{args.checkpoint}: not a CharLM checkpoint written by 'tinygrad-rnn train'")
    tokenizer = _tokenizer_from(checkpoint.metadata, args.checkpoint)
    try:
        model = CharLM(**{k: v for k, v in config.items() if k != "model"})
    except (TypeError, ValueError) as exc:
        raise CLIError(f"{args.checkpoint}: invalid model configuration ({exc})") from None
    io.load(args.checkpoint, model=model)
    extra = checkpoint.metadata.get("extra") or {}
    vocab = tokenizer.vocab_size
    if args.top_k is not None and not 1 <= args.top_k <= vocab:
        raise CLIError(f"--top-k must be between 1 and the model's vocabulary size {vocab}, got {args.top_k}")
    if args.max_len is not None and args.max_len < 1:
        raise CLIError(f"--max-len must be >= 1, got {args.max_len}")
    missing = _unknown_chars(tokenizer, args.prime)
    if missing:  # the model never saw them (a text model would feed it an untrained <unk>)
        hint = ""
        if not _unknown_chars(tokenizer, args.prime.lower()):
            hint = f"; try it in lowercase: --prime {args.prime.lower()!r}"
        raise CLIError(f"--prime {args.prime!r}: {_describe_chars(missing)} not among the characters the model "
                       f"was trained on, {_vocabulary(tokenizer)}{hint}")
    max_len = args.max_len if args.max_len is not None else (30 if extra.get("mode", "names") == "names" else 200)
    for i in range(args.n):
        seed = None if args.seed is None else args.seed + i
        print(_sample(model, tokenizer, extra, args.prime, max_len, args.temperature, args.top_k, seed))
    return 0


# ----- graph -------------------------------------------------------------------------------------
def cmd_graph(args: argparse.Namespace) -> int:
    """Dump an unrolled layer's graph (``tinygrad-rnn graph``); the exit code."""
    from . import viz
    from .nn import GRU, LSTM, RNN
    from .random import manual_seed
    from .autograd.tensor import Tensor
    from .viz.render import dot_too_large

    if args.steps < 1 or args.hidden < 1 or args.layers < 1:
        raise CLIError(f"--steps, --hidden and --layers must be >= 1, got {args.steps}, "
                       f"{args.hidden} and {args.layers}")
    manual_seed(args.seed)
    layer = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[args.cell](
        2, args.hidden, num_layers=args.layers, bidirectional=args.bidirectional)
    x = Tensor(np.random.default_rng(args.seed).standard_normal((args.steps, 1, 2)).astype(np.float32))
    output, _ = layer(x)
    loss = (output[-1] ** 2).sum()
    grads = args.grads or args.format == "html"  # the viewer shows gradient norms
    if grads:
        viz.retain_grads(loss)
        loss.backward(retain_graph=True)
    params = dict(layer.named_parameters())
    path = Path(args.output) if args.output else Path(f"{args.cell}_unrolled.{args.format}")
    if args.format == "html":
        path = viz.to_html(loss, params=params,
                           title=f"{args.cell.upper()} unrolled over {args.steps} steps").save(path)
        how = "interactive viewer"
    else:
        dot = viz.to_dot(loss, params=params, show_grads=grads, collapse_steps=args.collapse)
        layout = args.layout
        if layout == "auto":
            layout = "unrolled" if dot_too_large(dot.source) else "dot"
            if layout == "unrolled" and args.format != "dot":
                print(f"note: {args.steps} steps are too many for Graphviz's global layout (it would "
                      "take minutes); using the linear-in-T layout (--layout dot forces dot)")
        if args.format == "dot":
            path = viz.render(dot, path, format="dot")
            how = "DOT source"
        elif layout == "unrolled":
            if args.format != "svg":
                raise CLIError(f"--layout unrolled writes SVG or HTML, not {args.format}: pass "
                               "--format svg (or html), or --layout dot for a small graph")
            path = viz.to_svg(loss, params=params, show_grads=grads,
                              collapse_steps=args.collapse).save(path)
            how = "linear-in-T layout"
        else:
            try:
                path = viz.render(dot, path, format=args.format, check_size=args.layout != "dot")
            except RuntimeError as exc:  # GraphvizNotFound, or `dot` itself failed
                raise CLIError(str(exc).replace("\n", " ")) from None
            how = "Graphviz dot layout"
    stats = viz.graph_stats(loss)
    print(f"{args.cell.upper()} unrolled over {args.steps} steps: {stats['nodes']} nodes, depth "
          f"{stats['depth']}, {stats['parameters']} parameter leaves -> {path} ({how})")
    return 0


# ----- check -------------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    """Autograd vs analytic vs finite differences (``tinygrad-rnn check``); 1 on FAIL."""
    from .crosscheck import KINDS, check_kind, check_user_cell, format_table

    if ":" in args.cell or args.analytic is not None:  # a user's cell and handwritten BPTT
        if ":" not in args.cell or args.analytic is None:
            raise CLIError("check: --cell package.module:CellClass and --analytic package.module:forward,backward "
                           "go together")
        results = [check_user_cell(args.cell, args.analytic, seed=args.seed)]
    else:
        if args.cell not in ("all", "rnn") + KINDS:
            raise CLIError(f"--cell: expected all, rnn, {', '.join(KINDS)} or package.module:CellClass, got {args.cell!r}")
        kinds = KINDS if args.cell == "all" else (args.cell if args.cell != "rnn" else "rnn_tanh",)
        results = [check_kind(kind, seed=args.seed) for kind in kinds]
    print(format_table(results))
    for r in results:
        for failure in r.failures:
            print(f"{r.name}: {failure}")
    failed = [r.name for r in results if not r.passed]
    print("FAIL: " + ", ".join(failed) if failed else "all checks PASS")
    return EXIT_ERROR if failed else 0


# ----- export ------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    """Export a checkpoint to ONNX (``tinygrad-rnn export``); the exit code."""
    try:
        from .onnx import export_checkpoint
        proto = export_checkpoint(args.checkpoint, args.output, with_state=args.state, opset_version=args.opset)
    except ImportError as exc:  # the onnx extra is not installed
        raise CLIError(str(exc)) from None

    def describe(values: Any) -> str:
        return ", ".join(f"{v.name} ({', '.join(d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim)})"
                         for v in values)
    print(f"wrote {args.output} (ONNX opset {args.opset}): inputs {describe(proto.graph.input)}; "
          f"outputs {describe(proto.graph.output)}; the tokenizer is in its metadata")
    return 0


# ----- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``tinygrad-rnn`` argument parser with its five subcommands."""
    parser = argparse.ArgumentParser(prog="tinygrad-rnn", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a character-level model (default: LSTM on bundled names)")
    train.add_argument("--data", help="a UTF-8 text file to train on instead of the bundled names")
    # Defaults are None so that --resume can tell given options from omitted ones (_resolve_options).
    train.add_argument("--cell", choices=("rnn", "lstm", "gru"),
                       help=f"recurrent cell (default {MODEL_OPTIONS['cell']})")
    train.add_argument("--hidden", type=int, help=f"hidden units per layer (default {MODEL_OPTIONS['hidden']})")
    train.add_argument("--layers", type=int, help=f"stacked recurrent layers (default {MODEL_OPTIONS['layers']})")
    train.add_argument("--embed", type=int, help=f"character embedding size (default {MODEL_OPTIONS['embed']})")
    train.add_argument("--seq-len", type=int,
                       help=f"truncated-BPTT chunk length, --data only (an error without it); at most about "
                            f"half the validation split, the last 10%% of the text (default "
                            f"{RUN_OPTIONS['seq_len']}, shortened with a note when the text is too short)")
    train.add_argument("--batch-size", type=int,
                       help=f"sequences per batch (default {RUN_OPTIONS['batch_size']})")
    length = train.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help=f"optimizer steps (default {DEFAULT_STEPS})")
    length.add_argument("--epochs", type=int, help="passes over the training data")
    train.add_argument("--lr", type=float,
                       help=f"Adam learning rate, a finite number > 0 (default {RUN_OPTIONS['lr']})")
    train.add_argument("--clip", type=float,
                       help=f"max gradient norm, a finite number > 0 (default {RUN_OPTIONS['clip']}; "
                            "a huge value such as 1e9 clips nothing)")
    train.add_argument("--seed", type=int,
                       help=f"data split, shuffling, initialisation and samples (default {RUN_OPTIONS['seed']})")
    train.add_argument("--out", default="model.safetensors",
                       help="checkpoint path, written whenever the validation loss improves (so it holds the "
                            "best state); Ctrl-C saves the current state beside it as NAME.last.safetensors "
                            "instead, never over it, and exits with code 130")
    train.add_argument("--resume", metavar="CKPT",
                       help="continue training from this checkpoint: its model is kept (--cell, --hidden, "
                            "--layers and --embed may only repeat its values) and --data, --seq-len, "
                            "--batch-size, --lr, --clip and --seed default to the checkpoint's")
    train.add_argument("--n", type=int, default=10, help="samples printed at the end")
    train.add_argument("--temperature", type=float, default=0.8)
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--no-compile", action="store_true",
                       help="run every step eagerly instead of replaying a traced step "
                            "(tinygrad_rnn.compile); same results, slower")
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser(
        "sample", help="sample from a checkpoint written by train",
        description="Print --n samples from a checkpoint written by 'tinygrad-rnn train'. Names models "
                    "start each name from <eos> and stop at the next <eos> (or --max-len, default 30). "
                    "Text models (train --data) never saw <eos>: they continue --prime for "
                    "--max-len characters (default 200); without --prime they start after a newline "
                    "(as at the start of a line) when the text has one, else from the text's first "
                    "character.")
    sample.add_argument("checkpoint")
    sample.add_argument("--n", type=int, default=10)
    sample.add_argument("--temperature", type=float, default=0.8)
    sample.add_argument("--top-k", type=int,
                        help="sample among the k most likely tokens only (exactly k: ties go to the lower id)")
    sample.add_argument("--prime", default="", help="text each sample continues (printed first)")
    sample.add_argument("--max-len", type=int, help="characters to draw (default: 30 for names, 200 for text)")
    sample.add_argument("--seed", type=int)
    sample.set_defaults(func=cmd_sample)

    graph = sub.add_parser("graph", help="dump the unrolled computation graph of a small layer")
    graph.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    graph.add_argument("--steps", type=int, default=3)
    graph.add_argument("--hidden", type=int, default=3)
    graph.add_argument("--layers", type=int, default=1)
    graph.add_argument("--bidirectional", action="store_true")
    graph.add_argument("--format", choices=("svg", "dot", "png", "html"), default="svg",
                       help="html: the interactive viewer (pan, zoom, steps that expand on click)")
    graph.add_argument("--layout", choices=("auto", "dot", "unrolled"), default="auto",
                       help="dot: Graphviz's global layout (small graphs); unrolled: one step laid "
                            "out once and repeated, linear in --steps; auto: dot while it is fast")
    graph.add_argument("-o", "--output", help="output path")
    graph.add_argument("--grads", action="store_true", help="label tensors with gradient norms")
    graph.add_argument("--collapse", action="store_true", help="one box per time step")
    graph.add_argument("--seed", type=int, default=0)
    graph.set_defaults(func=cmd_graph)

    export = sub.add_parser(
        "export", help="write a checkpoint from train as an ONNX file (needs the onnx extra)",
        description="Export a checkpoint written by 'tinygrad-rnn train' to ONNX (ONNX's own LSTM/GRU/RNN "
                    "operators): input_ids (batch, sequence) int64 -> logits (batch, sequence, vocab) and the "
                    "final state; softmax(logits[:, -1]) is the next-character distribution. The tokenizer, "
                    "config and mode are stored in the file's metadata.")
    export.add_argument("checkpoint")
    export.add_argument("-o", "--output", default="model.onnx", help="ONNX file to write (atomically)")
    export.add_argument("--state", action="store_true",
                        help="also take the initial state (h_0, and c_0 for an LSTM) as inputs, to feed one "
                             "character at a time")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset version (14 or later)")
    export.set_defaults(func=cmd_export)

    check = sub.add_parser(
        "check", help="autograd vs analytic BPTT vs finite differences",
        description="Three-way check of a cell: the engine's autograd, a handwritten forward/backward through "
                    "time and central differences (float64, 5 steps, batch 2). Built-in cells use "
                    "tinygrad_rnn.analytic; for your own, give --cell module:CellClass (called as "
                    "CellClass(3, 4)) and --analytic module:forward,backward (or module:obj with both), with "
                    "the signatures of tinygrad_rnn.testing.crosscheck_cell; modules are imported from the "
                    "current directory.")
    check.add_argument("--cell", default="all",
                       help="all, rnn, rnn_tanh, rnn_relu, lstm, gru, or package.module:CellClass (default all)")
    check.add_argument("--analytic", metavar="MODULE:FORWARD,BACKWARD",
                       help="your handwritten forward,backward for --cell package.module:CellClass")
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tinygrad-rnn`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tinygrad-rnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CLIError, ValueError, TypeError, OSError, UnicodeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"tinygrad-rnn: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def entry() -> int:
    """The ``tinygrad-rnn`` console script and ``python -m tinygrad_rnn.cli``: a process of its
    own, tuned with :func:`tinygrad_rnn.runtime.tune_for_training` before running :func:`main`
    (which, called from Python, changes nothing process-wide)."""
    from .runtime import tune_for_training
    tune_for_training()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
