"""Checkpoints: model weights, optimizer state and metadata in one safetensors file, written atomically.

Layout of a checkpoint (a plain safetensors file: 8-byte little-endian header length, a JSON
header, raw little-endian tensor bytes; nothing is pickled, so loading never runs code):

- model tensors under their ``state_dict`` names (``rnn.weight_ih_l0``, ``head.bias``, ...);
- optimizer buffers as ``optim/state/<parameter index>/<buffer name>`` (the index is the parameter's
  position over all param groups, as in ``Optimizer.state_dict()``);
- the header's ``__metadata__`` (string values, JSON-encoded): ``format``/``format_version``, the
  library version, the model class, the caller's ``config`` (constructor arguments), the tokenizer
  (its ``to_dict()``), ``step``/``epoch``, the library RNG state, ``extra`` (any JSON-able dict),
  the optimizer class, param groups and scalar state (step counts), and a SHA-256 of the tensors.

``save`` writes to a temporary file in the target's directory, fsyncs it and renames it over the
target with ``os.replace``, so a crash at any moment leaves either the old or the new checkpoint.
``load`` reads and validates everything (file, header, checksum, format, keys, shapes, dtypes,
optimizer state) before it assigns anything, so a bad file leaves the model and optimizer untouched.
"""
from __future__ import annotations

import copy
import glob
import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import safetensors.numpy

from .. import random as _random

__all__ = ["save", "load", "read", "Checkpoint", "CheckpointError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "tinygrad_rnn.checkpoint"
FORMAT_VERSION = 1
OPTIM_PREFIX = "optim/state/"
#: Temporary files are named ``.<target name>.<pid>.<random>.tmp`` beside the target. A process
#: killed mid-save leaves one behind; the next save to the same target deletes those whose writer
#: process no longer exists (POSIX only; on a filesystem shared between hosts, clean by hand).
TEMP_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A file that cannot be loaded as (or into) a tinygrad_rnn checkpoint; names file and problem."""


# ----- save --------------------------------------------------------------------------------------
def save(path: str | os.PathLike, model: Any, optimizer: Any = None, *, config: Mapping | None = None,
         tokenizer: Any = None, step: int | None = None, epoch: int | None = None,
         extra: Mapping | None = None) -> Path:
    """Write a checkpoint of ``model`` (and ``optimizer``) to ``path`` atomically; return the path.

    ``model`` is a Module (or a mapping name -> array); ``config`` a JSON-able dict of what is needed
    to rebuild the model (e.g. its constructor arguments); ``tokenizer`` anything with ``to_dict()``;
    ``extra`` a JSON-able dict (training history, best validation loss, ...).
    """
    path = Path(path)
    tensors = _model_tensors(model)
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "model_class": type(model).__name__,
        "config": _json_dict(config, "config"),
        "step": _optional_int(step, "step"),
        "epoch": _optional_int(epoch, "epoch"),
        "extra": _json_dict(extra, "extra"),
        "rng_state": _random.get_rng_state(),
        "tokenizer": None,
        "optimizer": None,
    }
    if tokenizer is not None:
        if not callable(getattr(tokenizer, "to_dict", None)):
            raise TypeError(f"save: tokenizer must have a to_dict() method, got {type(tokenizer).__name__}")
        metadata["tokenizer"] = _json_dict(tokenizer.to_dict(), "tokenizer.to_dict()")
    if optimizer is not None:
        metadata["optimizer"] = _pack_optimizer(optimizer, tensors)
    metadata["tensors_sha256"] = _digest(tensors)
    header = {key: json.dumps(value, default=_json_default) for key, value in metadata.items()}
    blob = safetensors.numpy.save(tensors, metadata=header)
    _atomic_write(path, blob)
    return path


def _model_tensors(model: Any) -> dict[str, np.ndarray]:
    if hasattr(model, "state_dict") and callable(model.state_dict):
        state = model.state_dict()
    elif isinstance(model, Mapping):
        state = model
    else:
        raise TypeError(f"save: model must be a Module or a mapping of name -> array, got {type(model).__name__}")
    tensors = {}
    for name, value in state.items():
        if not isinstance(name, str) or not name or name.startswith("optim/"):
            raise ValueError(f"save: invalid model tensor name {name!r} (names starting with 'optim/' are reserved)")
        array = np.asarray(getattr(value, "data", value))
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: model tensor '{name}' has non-numeric dtype {array.dtype}")
        tensors[name] = np.ascontiguousarray(array)
    return tensors


def _pack_optimizer(optimizer: Any, tensors: dict[str, np.ndarray]) -> dict:
    """Buffers go into ``tensors``; hyperparameters and scalar state into a JSON-able dict."""
    if not callable(getattr(optimizer, "state_dict", None)):
        raise TypeError(f"save: optimizer must have state_dict(), got {type(optimizer).__name__}")
    state = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for index, buffers in state["state"].items():
        scalars[str(index)] = {}
        for name, value in buffers.items():
            if isinstance(value, (np.ndarray, np.generic)):  # NumPy scalars keep their dtype as 0-d arrays
                tensors[f"{OPTIM_PREFIX}{index}/{name}"] = np.ascontiguousarray(value)
            else:
                scalars[str(index)][name] = value
    return {"class": type(optimizer).__name__, "param_groups": state["param_groups"], "scalars": scalars}


def _library_version() -> str:
    from .. import __version__  # lazily: this module is imported while the package initialises
    return __version__


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"save: {name} must be an int or None, got {type(value).__name__}")
    return int(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _json_dict(value: Any, name: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"save: {name} must be a dict, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(dict(value), default=_json_default))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"save: {name} must be JSON-serialisable ({exc})") from None


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order (layout independent)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def _atomic_write(path: Path, blob: bytes) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(f"save: {path} is a directory; give a file path")
    # Checked here because the OSError of mkstemp below would name the temporary file, which the
    # caller never asked for, instead of the checkpoint path (as torch.save does, nothing is created).
    if not directory.is_dir():
        if directory.exists():
            raise NotADirectoryError(f"save: cannot write {path}: {directory} is not a directory")
        raise FileNotFoundError(f"save: cannot write {path}: the directory {directory} does not exist")
    _remove_stale_temps(directory, path.name)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=directory)
    except OSError as exc:  # e.g. a read-only directory
        raise type(exc)(exc.errno, f"save: cannot write {path}: {exc.strerror}") from None
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes the file private (0600); use the usual mode instead
            os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:  # including KeyboardInterrupt: never leave a partial file behind
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _file_mode(path: Path) -> int:
    """The mode the checkpoint gets: the old file's if it is replaced, else 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps(directory: Path, name: str) -> None:
    if os.name != "posix":
        return
    for temp in directory.glob(f".{glob.escape(name)}.*{TEMP_SUFFIX}"):
        pid = temp.name[len(name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or _process_alive(int(pid)):
            continue
        try:
            temp.unlink()
        except OSError:
            pass


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----- load --------------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    """A validated checkpoint read from ``path``.

    ``state_dict``: model arrays (writable copies); ``optimizer_state``: a dict for
    ``Optimizer.load_state_dict`` (or None); ``metadata``: the decoded metadata (``config``,
    ``tokenizer``, ``step``, ``epoch``, ``extra``, ``rng_state``, ``model_class``, ...).
    """

    path: str
    state_dict: dict[str, np.ndarray]
    optimizer_state: dict | None
    metadata: dict = field(default_factory=dict)

    @property
    def config(self) -> dict | None:
        return self.metadata.get("config")

    @property
    def step(self) -> int | None:
        return self.metadata.get("step")

    @property
    def epoch(self) -> int | None:
        return self.metadata.get("epoch")

    @property
    def extra(self) -> dict | None:
        return self.metadata.get("extra")

    @property
    def tokenizer(self) -> dict | None:
        """The tokenizer's ``to_dict()`` (rebuild it with e.g. ``CharTokenizer.from_dict``)."""
        return self.metadata.get("tokenizer")

    def load_into(self, model: Any = None, optimizer: Any = None, restore_rng: bool = False) -> None:
        """Copy the weights into ``model``, the state into ``optimizer`` and, if asked, restore the
        library RNG. Everything is checked first: on any mismatch a :class:`CheckpointError` names
        the file and the problem, and nothing has been modified."""
        staged = self._check_model(model) if model is not None else None
        if optimizer is not None:
            self._check_optimizer(optimizer)
        if restore_rng and not isinstance(self.metadata.get("rng_state"), dict):
            raise self._error("holds no RNG state to restore")
        if model is not None:
            model.load_state_dict(staged)
        if optimizer is not None:
            optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        if restore_rng:
            _random.set_rng_state(copy.deepcopy(self.metadata["rng_state"]))

    def _error(self, problem: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {self.path}: {problem}")

    def _check_model(self, model: Any) -> dict[str, np.ndarray]:
        if not callable(getattr(model, "named_parameters", None)):
            raise TypeError(f"load: model must be a Module, got {type(model).__name__}")
        own = dict(model.named_parameters())
        missing = [k for k in own if k not in self.state_dict]
        unexpected = [k for k in self.state_dict if k not in own]
        if missing or unexpected:
            raise self._error(
                f"does not match the {type(model).__name__} given (saved from "
                f"{self.metadata.get('model_class')}): missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, param in own.items():
            array = self.state_dict[name]
            if array.shape != param.shape:
                raise self._error(f"shape mismatch for '{name}': the model has {param.shape}, the file {array.shape}")
            if array.dtype != param.dtype:
                raise self._error(f"dtype mismatch for '{name}': the model has {param.dtype}, the file {array.dtype}")
        return {name: array.copy() for name, array in self.state_dict.items()}

    def _check_optimizer(self, optimizer: Any) -> None:
        if self.optimizer_state is None:
            raise self._error("holds no optimizer state")
        saved_class = self.metadata["optimizer"]["class"]
        if saved_class != type(optimizer).__name__:
            raise self._error(f"optimizer state was saved from {saved_class}, not {type(optimizer).__name__}")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, buffers in self.optimizer_state["state"].items():
            if not 0 <= index < len(params):
                raise self._error(f"optimizer state refers to parameter {index}; the optimizer has {len(params)}")
            for name, value in buffers.items():
                if isinstance(value, np.ndarray) and value.shape == params[index].data.shape \
                        and value.dtype != params[index].data.dtype:
                    raise self._error(f"optimizer buffer '{name}' of parameter {index} has dtype "
                                      f"{value.dtype}, the parameter {params[index].data.dtype}")
        # Rehearse on a shallow copy: load_state_dict replaces (never mutates) groups and state,
        # so the real optimizer is untouched if this raises.
        rehearsal = copy.copy(optimizer)
        try:
            rehearsal.load_state_dict(copy.deepcopy(self.optimizer_state))
        except (ValueError, TypeError, KeyError) as exc:
            raise self._error(f"optimizer state does not fit the optimizer given: {exc}") from None
        # JSON turned tuples (Adam's betas) into lists; give them back the live optimizer's type.
        for saved, live in zip(self.optimizer_state["param_groups"], optimizer.param_groups):
            for key, value in saved.items():
                if isinstance(live.get(key), tuple) and isinstance(value, list):
                    saved[key] = tuple(value)


def load(path: str | os.PathLike, model: Any = None, optimizer: Any = None, *,
         restore_rng: bool = False) -> Checkpoint:
    """Read and validate a checkpoint; if given, load it into ``model``/``optimizer`` (all or nothing).

    ``restore_rng=True`` also restores the library RNG (needed for an exact resume with dropout).
    Raises FileNotFoundError for a missing file and :class:`CheckpointError` (a ValueError) naming
    the file for anything unreadable, corrupted, foreign or mismatched.
    """
    checkpoint = read(path)
    checkpoint.load_into(model, optimizer, restore_rng=restore_rng)
    return checkpoint


def read(path: str | os.PathLike) -> Checkpoint:
    """Parse and validate the file alone (format, checksum, metadata); assign nothing."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a directory, not a file")
    blob = path.read_bytes()

    def error(problem: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {path}: {problem}")

    raw_meta = _parse_header(blob, error)
    try:
        arrays = safetensors.numpy.load(blob)
    except Exception as exc:  # safetensors raises its own error type for layout problems
        raise error(f"corrupted safetensors data ({exc})") from None
    if raw_meta.get("format") != json.dumps(FORMAT):
        raise error(f"not a tinygrad_rnn checkpoint (no '{FORMAT}' format marker in the metadata)")
    metadata = {}
    for key, value in raw_meta.items():
        try:
            metadata[key] = json.loads(value)
        except (TypeError, ValueError):
            raise error(f"metadata entry '{key}' is not valid JSON") from None
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise error(f"format_version {version!r} is not supported (this library reads up to {FORMAT_VERSION})")
    if metadata.get("tensors_sha256") != _digest(arrays):
        raise error("tensor data does not match its checksum (the file is corrupted)")

    state = {k: v.copy() for k, v in arrays.items() if not k.startswith("optim/")}
    optimizer_state = _unpack_optimizer(metadata.get("optimizer"), arrays, error)
    return Checkpoint(str(path), state, optimizer_state, metadata)


def _parse_header(blob: bytes, error: Any) -> dict:
    """The header's ``__metadata__``, checking the 8-byte length and the JSON first."""
    if len(blob) < 8:
        raise error(f"not a safetensors file (only {len(blob)} bytes)")
    (length,) = struct.unpack("<Q", blob[:8])
    if length > len(blob) - 8:
        raise error(f"truncated or not a safetensors file (header of {length} bytes claimed, "
                    f"{len(blob) - 8} bytes present)")
    try:
        header = json.loads(blob[8:8 + length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise error("not a safetensors file or corrupted header (the header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise error("corrupted safetensors header (not a JSON object)")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise error("corrupted safetensors header (__metadata__ must map strings to strings)")
    return meta


def _unpack_optimizer(packed: Any, arrays: Mapping[str, np.ndarray], error: Any) -> dict | None:
    buffers = {k[len(OPTIM_PREFIX):]: v for k, v in arrays.items() if k.startswith(OPTIM_PREFIX)}
    if packed is None:
        if buffers:
            raise error("optimizer tensors present but no optimizer metadata")
        return None
    if not isinstance(packed, dict) or not {"class", "param_groups", "scalars"} <= set(packed):
        raise error("optimizer metadata is malformed")
    state: dict[int, dict] = {}
    try:
        for index, scalars in packed["scalars"].items():
            state[int(index)] = dict(scalars)
        for key, array in buffers.items():
            index, name = key.split("/", 1)
            state.setdefault(int(index), {})[name] = array.copy()
    except (ValueError, AttributeError):
        raise error("optimizer state is malformed") from None
    return {"state": state, "param_groups": copy.deepcopy(packed["param_groups"])}
