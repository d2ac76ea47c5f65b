"""The first-party import graph: no cycle between modules, and every import goes down the layers
(docs/architecture.md, "Layers"). Read from the source with ``ast`` (imports inside functions and
under ``TYPE_CHECKING`` count too), nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# top to bottom: a module may import its own package and the packages of the layers BELOW its own;
# two packages of one layer are independent of each other
LAYERS: list[tuple[str, ...]] = [
    ("apps",),  # the command line and the HTTP gateway
    ("jobs",),  # one-shot jobs: clusters, heads/ranker training, export, ingest, demo
    ("consumers",),  # worker entry points, the role registry, the process runner
    ("streams", "producers"),  # the faust apps; the clients upstream apps and search clients import
    ("imgsearch",),  # the core: config, domain, embedding, index, ranker, kafka helpers, ...
    ("schemas",),  # the event contracts and topics
]
LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
NOT_PRODUCT = ("tests", "bench")  # may import the product; the product never imports them


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for pkg in LAYER_OF
        for path in sorted((REPO_ROOT / pkg).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, int]]:
    """(first-party module or package imported, line) for every import statement of the file."""
    is_package = path.name == "__init__.py"
    out: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            top = target.split(".")[0]
            if top in LAYER_OF or top in NOT_PRODUCT:
                while target not in modules and "." in target:  # `import a.b.c` of a name: the module a.b
                    target = target.rsplit(".", 1)[0]
                out.add((target, node.lineno))
    return out


def graph() -> dict[str, set[tuple[str, int]]]:
    modules = product_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_the_layer_table_names_every_top_level_package() -> None:
    packages = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - set(NOT_PRODUCT)
    assert packages == set(LAYER_OF), "add a new top-level package to LAYERS (and docs/architecture.md)"


def test_imports_go_down_the_layers() -> None:
    broken = []
    for importer, targets in sorted(graph().items()):
        src = importer.split(".")[0]
        for target, line in sorted(targets):
            dst = target.split(".")[0]
            where = f"{importer} (line {line}) imports {target}"
            if dst in NOT_PRODUCT:
                broken.append(f"{where}: the product never imports {dst}/")
            elif dst == src:
                continue
            elif LAYER_OF[dst] < LAYER_OF[src]:
                broken.append(f"{where}: {src}/ must not import {dst}/, a layer above it (LAYERS)")
            elif LAYER_OF[dst] == LAYER_OF[src]:
                broken.append(f"{where}: {src}/ and {dst}/ are one layer, independent of each other (LAYERS)")
    assert not broken, "imports against the layers:\n" + "\n".join(broken)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules() -> None:
    g = graph()
    edges = {m: {t for t, _ in targets if t in g} for m, targets in g.items()}
    found = cycles(edges)
    described = [
        " <-> ".join(c)
        + ": "
        + "; ".join(f"{a} -> {b} (line {line})" for a in c for b, line in sorted(g[a]) if b in c and b != a)
        for c in found
    ]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_the_checker_sees_a_cycle_and_a_function_level_import() -> None:
    """The checker itself: a cycle is found, and an import inside a function counts."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    modules = product_modules()
    cli = imports_of("apps.cli", modules["apps.cli"], modules)
    assert "jobs.clusters" in {t for t, _ in cli}  # imported inside main(), not at the top
