"""Public API hygiene: every public module declares ``__all__``, every name in it exists, and every
public function and class in it has a docstring (the API reference in docs/reference/ is generated
from them)."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]


PACKAGE = ROOT / "tinygrad_rnn"


def public_modules() -> dict[str, Path]:
    """Every module of the package whose dotted name has no underscore-prefixed part, with its file."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(part.startswith("_") for part in parts):
            found[".".join(parts)] = path
    return found


MODULES = public_modules()

# A re-export module keeps an old import path working after its code moved (the package layout):
# its docstring starts "Re-export of :mod:`<new module>`" and its body is only imports and __all__.
RE_EXPORT_DOC = re.compile(r"Re-export of :mod:`(tinygrad_rnn[\w.]*)`")


def re_export_target(path: Path) -> str | None:
    """The module a re-export module points at, or None for a module that holds its own code."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = RE_EXPORT_DOC.match(doc)
    return match.group(1) if match else None


RE_EXPORTS = {name: target for name, path in MODULES.items() if (target := re_export_target(path))}


def test_the_package_has_the_modules_we_expect_to_check():
    # guards the walk itself: a broken walk would make every test below pass vacuously
    assert {"tinygrad_rnn", "tinygrad_rnn.tensor", "tinygrad_rnn.nn.cells", "tinygrad_rnn.viz.render",
            "tinygrad_rnn.compile.trace", "tinygrad_rnn.analytic", "tinygrad_rnn.torch_interop",
            "tinygrad_rnn.autograd.engine", "tinygrad_rnn.reference.analytic", "tinygrad_rnn.train.loop",
            "tinygrad_rnn.data.text"} <= set(MODULES)


def test_the_old_import_paths_are_the_re_exports_we_expect():
    assert RE_EXPORTS == {
        "tinygrad_rnn.tensor": "tinygrad_rnn.autograd.tensor",
        "tinygrad_rnn.engine": "tinygrad_rnn.autograd.engine",
        "tinygrad_rnn.gradcheck": "tinygrad_rnn.autograd.gradcheck",
        "tinygrad_rnn.ops": "tinygrad_rnn.autograd.ops",
        **{f"tinygrad_rnn.ops.{m}": f"tinygrad_rnn.autograd.ops.{m}"
           for m in ("elementwise", "reduce", "shape", "linalg", "common")},
        "tinygrad_rnn.analytic": "tinygrad_rnn.reference.analytic",
        "tinygrad_rnn.losses": "tinygrad_rnn.train.losses",
        "tinygrad_rnn.optim": "tinygrad_rnn.train.optim",
        "tinygrad_rnn.io": "tinygrad_rnn.train.checkpoints",
        "tinygrad_rnn.callbacks": "tinygrad_rnn.train.callbacks",
        "tinygrad_rnn.array_training": "tinygrad_rnn.train.array_training",
        "tinygrad_rnn.datasets": "tinygrad_rnn.data.datasets",
        "tinygrad_rnn.generate": "tinygrad_rnn.data.generate",
    }


@pytest.mark.parametrize("name", sorted(RE_EXPORTS))
def test_a_re_export_module_holds_no_code_and_hands_out_the_same_objects(name):
    # Same objects, not copies: e.g. tinygrad_rnn.engine.set_tracer must set the tracer global of the
    # one engine module, and isinstance checks against tinygrad_rnn.tensor.Tensor must keep working.
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in tree.body[1:]:   # after the docstring
        assert isinstance(node, (ast.ImportFrom, ast.Import)) or (
            isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]), \
            f"{name} holds code at line {node.lineno}; a re-export module only imports and lists __all__"
    old, new = importlib.import_module(name), importlib.import_module(RE_EXPORTS[name])
    assert set(getattr(new, "__all__", ())) <= set(old.__all__), f"{name} drops names of {RE_EXPORTS[name]}"
    for attr in old.__all__:
        assert getattr(old, attr) is getattr(new, attr), f"{name}.{attr} is not {RE_EXPORTS[name]}.{attr}"


def test_importing_every_module_leaves_the_package_attributes_alone():
    # importing a submodule binds it on its package: tg.gradcheck must stay the function
    import tinygrad_rnn as tg
    from tinygrad_rnn.autograd.gradcheck import gradcheck

    for name in MODULES:
        if name.split(".")[-1] not in ("onnx", "torch_interop"):  # optional extras
            importlib.import_module(name)
    assert tg.gradcheck is gradcheck
    assert tg.save.__module__ == "tinygrad_rnn.train.checkpoints" and callable(tg.compile)


def test_the_engine_state_is_shared_through_the_old_path():
    from tinygrad_rnn import engine
    from tinygrad_rnn.autograd import engine as real_engine

    sentinel = object()
    previous = engine.get_tracer()
    engine.set_tracer(sentinel)
    try:
        assert real_engine.get_tracer() is sentinel
    finally:
        engine.set_tracer(previous)


def exported_names(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_public_module_declares_all_and_documents_it(name):
    # Read statically (ast), so modules of optional extras (torch_interop, onnx) are checked without them.
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{name} has no module docstring"
    exported = exported_names(tree)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    defined = {}
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined[node.name] = node
        for target in ast.walk(node) if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign,
                                                            ast.AnnAssign, ast.If, ast.Try)) else ():
            if isinstance(target, ast.alias):
                bound.add((target.asname or target.name).split(".")[0])
            elif isinstance(target, ast.Name):
                bound.add(target.id)
    lazy = defined.get("__getattr__")   # a module __getattr__ may serve names defined on first use
    lazy_source = ast.get_source_segment(MODULES[name].read_text(encoding="utf-8"), lazy) if lazy else ""
    undocumented = []
    for attr in exported:
        assert not attr.startswith("_"), f"{name}.__all__ exports the private name {attr!r}"
        assert attr in defined or attr in bound or repr(attr) in lazy_source or f'"{attr}"' in lazy_source, \
            f"{name}.__all__ lists {attr!r}, which the module neither defines nor imports"
        if attr in defined and not ast.get_docstring(defined[attr]):
            undocumented.append(attr)
    assert not undocumented, f"{name}: no docstring on {', '.join(undocumented)}"


def test_a_module_that_breaks_the_rules_is_caught(tmp_path):
    bad = "\"\"\"A module.\"\"\"\n__all__ = [\"f\", \"g\"]\n\ndef f():\n    return 1\n"
    MODULES["tinygrad_rnn.broken_for_the_test"] = tmp_path / "broken.py"
    (tmp_path / "broken.py").write_text(bad)
    try:
        with pytest.raises(AssertionError, match="'g'"):
            test_public_module_declares_all_and_documents_it("tinygrad_rnn.broken_for_the_test")
        (tmp_path / "broken.py").write_text(bad.replace(', \"g\"', ""))
        with pytest.raises(AssertionError, match="no docstring on f"):
            test_public_module_declares_all_and_documents_it("tinygrad_rnn.broken_for_the_test")
    finally:
        del MODULES["tinygrad_rnn.broken_for_the_test"]


def test_every_public_module_has_a_page_in_the_api_reference():
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "reference").glob("*.md"))
    documented = {line.split(":::", 1)[1].split()[0] for line in pages.splitlines()
                  if line.startswith("::: ")}
    missing = sorted(set(MODULES) - set(RE_EXPORTS) - documented)
    assert not missing, f"modules without an API reference entry: {missing}"
    # a re-export is not documented twice; the module it points at is
    assert not set(RE_EXPORTS) & documented, "the reference documents a re-export module; name its target"
    assert set(RE_EXPORTS.values()) <= documented


def imported_package_modules(name: str) -> set[str]:
    """Every tinygrad_rnn module that module ``name`` imports, at the top or inside a function."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{module}.{alias.name}" if not node.module and node.level else module
                      for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m == "tinygrad_rnn" or m.startswith("tinygrad_rnn.")}


# Lower layers never import higher ones: the engine knows nothing of nn, training, compile or the
# reference it is checked against, and the reference is written without the engine at all.
LAYER_RULES = {
    "tinygrad_rnn.autograd": ("tinygrad_rnn.autograd", "tinygrad_rnn.random"),
    "tinygrad_rnn.reference": ("tinygrad_rnn.reference",),
}


@pytest.mark.parametrize("layer", sorted(LAYER_RULES))
def test_a_lower_layer_imports_nothing_above_it(layer):
    allowed = LAYER_RULES[layer]
    modules = [name for name in MODULES if name == layer or name.startswith(layer + ".")]
    assert modules, f"no modules found under {layer}"
    for name in modules:
        outside = sorted(m for m in imported_package_modules(name)
                         if not any(m == a or m.startswith(a + ".") for a in allowed))
        assert not outside, f"{name} imports {outside}, above its layer"


def test_the_layer_check_sees_an_upward_import(tmp_path):
    MODULES["tinygrad_rnn.autograd.broken_for_the_test"] = tmp_path / "broken.py"
    (tmp_path / "broken.py").write_text("def f():\n    from ..train.optim import SGD\n    return SGD\n")
    try:
        with pytest.raises(AssertionError, match="tinygrad_rnn.train.optim"):
            test_a_lower_layer_imports_nothing_above_it("tinygrad_rnn.autograd")
    finally:
        del MODULES["tinygrad_rnn.autograd.broken_for_the_test"]
