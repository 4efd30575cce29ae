"""Public API hygiene: every public module declares ``__all__``, every name in it exists, and every
public function and class in it has a docstring (the API reference in docs/reference/ is generated
from them)."""
from __future__ import annotations

import ast
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


def test_the_package_has_the_modules_we_expect_to_check():
    # guards the walk itself: a broken walk would make every test below pass vacuously
    assert {"tinygrad_rnn", "tinygrad_rnn.tensor", "tinygrad_rnn.nn.cells", "tinygrad_rnn.viz.render",
            "tinygrad_rnn.compile.trace", "tinygrad_rnn.analytic", "tinygrad_rnn.torch_interop"} <= set(MODULES)


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
    missing = sorted(set(MODULES) - documented)
    assert not missing, f"modules without an API reference entry: {missing}"
