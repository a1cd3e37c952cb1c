"""Imports point down the layers: every module's imports, function-level ones included, checked
against one table of layers (``docs/architecture.md`` draws them).

Every module of the project belongs to exactly one layer, named by module prefix; a module may
import its own layer and the layers below it, never one above or beside it. ``storage`` is held
to more: it imports only itself and the vocabulary's types and errors, so the decision it
applies inside its write transaction is handed to it, never imported; and the rest of the
program enters it only through its facade (``from storage import Store``). A new module that no
layer names fails the test until it is placed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ingest", "storage", "scheduler")


@dataclass(frozen=True, slots=True)
class Layer:
    """``modules`` (prefixes) and ``exact`` (names; a package's ``__init__`` without its
    modules) at height ``rank``; ``allowed``, when given, is all they may import of the project
    besides themselves."""

    name: str
    rank: int
    modules: tuple[str, ...]
    allowed: tuple[str, ...] | None = None
    exact: tuple[str, ...] = ()


VOCABULARY = ("ingest.types", "ingest.errors", "ingest.urls", "ingest.units", "ingest")

LAYERS = (
    Layer("vocabulary", 0, VOCABULARY[:-1], allowed=VOCABULARY, exact=("ingest",)),
    Layer("storage", 1, ("storage",), allowed=("ingest.types", "ingest.errors")),
    Layer(
        "rules",
        1,
        (
            "ingest.config",
            "ingest.filters",
            "ingest.hooks",
            "ingest.identity",
            "ingest.sources",
            "ingest.websub.rules",
            "scheduler.policy",
            "scheduler.idle",
        ),
    ),
    Layer(
        "digest", 2, ("ingest.digest",), allowed=(*VOCABULARY, "ingest.identity", "ingest.filters")
    ),
    Layer("fetch", 3, ("ingest.fetch",), allowed=(*VOCABULARY, "ingest.config")),
    Layer("observe", 3, ("ingest.observe",), allowed=VOCABULARY),
    Layer("publish", 3, ("ingest.publish",)),
    Layer("leases", 3, ("scheduler.lease",), allowed=VOCABULARY),
    Layer("websub", 3, ("ingest.websub",), allowed=(*VOCABULARY, "ingest.websub.rules")),
    Layer("pipeline", 4, ("ingest.pipeline",)),
    Layer(
        "drivers",
        5,
        ("ingest.cli", "scheduler.driver", "scheduler.daemon"),
        exact=("scheduler", "ingest.__main__"),
    ),
)
"""Bottom to top. Layers of one height do not import each other; ``allowed`` narrows what a
layer takes from below (what its package docstring promises: a worker process that imports
``ingest.digest`` must not load the store or the HTTP stack)."""


def layer_of(module: str) -> Layer | None:
    """The layer naming ``module`` by its longest prefix or its exact name."""
    named = [
        (len(prefix), layer)
        for layer in LAYERS
        for prefix in layer.modules
        if module == prefix or module.startswith(prefix + ".")
    ] + [(len(name), layer) for layer in LAYERS for name in layer.exact if module == name]
    return max(named, key=lambda pair: pair[0])[1] if named else None


def matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imports_of(module: str, source: str, known: set[str]) -> set[str]:
    """The project modules ``source`` (module ``module``) imports, anywhere in it.

    ``from package import name`` counts as importing ``package.name`` when that is a module.
    """
    package = module if module in PACKAGES else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                inner = f"{base}.{alias.name}"
                found.add(inner if inner in known else base)
    return {name for name in found if matches(name, PACKAGES)}


def violations(modules: dict[str, Path]) -> list[str]:
    known = set(modules)
    found = []
    for module, path in modules.items():
        layer = layer_of(module)
        if layer is None:
            found.append(f"{module} is in no layer")
            continue
        for imported in sorted(imports_of(module, path.read_text(encoding="utf-8"), known)):
            target = layer_of(imported)
            if target is None or target is layer:
                continue
            if target.rank >= layer.rank or (
                layer.allowed is not None and not matches(imported, layer.allowed)
            ):
                found.append(f"{module} ({layer.name}) imports {imported} ({target.name})")
            elif target.name == "storage" and imported != "storage":
                found.append(f"{module} imports {imported}, not the storage facade")
    return found


def test_no_import_crosses_a_layer_the_wrong_way() -> None:
    assert violations(project_modules()) == []


def test_every_layer_names_a_module() -> None:
    modules = project_modules()
    assert [layer.name for layer in LAYERS if not any(layer_of(m) is layer for m in modules)] == []


def test_imports_inside_functions_and_relative_ones_count() -> None:
    source = (
        "from . import models\n"
        "from ingest import identity\n"
        "def later():\n"
        "    from scheduler.daemon import Daemon\n"
        "    import ingest.cli.feeds\n"
    )
    known = {"storage.models", "ingest.identity"}
    assert imports_of("storage.engine", source, known) == {
        "storage.models",
        "ingest.identity",
        "scheduler.daemon",
        "ingest.cli.feeds",
    }


def test_an_upward_import_in_storage_is_caught(tmp_path: Path) -> None:
    """The storage rule is not vacuous: the import ``storage.apply`` used to make fails it."""
    modules = project_modules()
    upward = tmp_path / "apply.py"
    upward.write_text("from ingest.identity import decide\n", encoding="utf-8")
    assert violations({**modules, "storage.apply": upward}) == [
        "storage.apply (storage) imports ingest.identity (rules)"
    ]


def test_an_import_from_a_higher_layer_is_caught(tmp_path: Path) -> None:
    modules = project_modules()
    upward = tmp_path / "policy.py"
    upward.write_text("from ingest.pipeline.runner import Pass\n", encoding="utf-8")
    assert violations({**modules, "scheduler.policy": upward}) == [
        "scheduler.policy (rules) imports ingest.pipeline.runner (pipeline)"
    ]


def test_a_module_in_no_layer_is_caught(tmp_path: Path) -> None:
    stray = tmp_path / "stray.py"
    stray.write_text("", encoding="utf-8")
    assert violations({**project_modules(), "stray": stray}) == ["stray is in no layer"]


def test_reaching_past_the_storage_facade_is_caught(tmp_path: Path) -> None:
    modules = project_modules()
    inside = tmp_path / "runner.py"
    inside.write_text("from storage.claims import claim_due\n", encoding="utf-8")
    assert violations({**modules, "ingest.pipeline.runner": inside}) == [
        "ingest.pipeline.runner imports storage.claims, not the storage facade"
    ]


def test_a_digest_module_loading_the_http_stack_is_caught(tmp_path: Path) -> None:
    """Worker processes import ``ingest.digest`` only; it must not pull in fetching."""
    modules = project_modules()
    heavy = tmp_path / "parse.py"
    heavy.write_text("from ingest.fetch.client import Fetcher\n", encoding="utf-8")
    assert violations({**modules, "ingest.digest.parse": heavy}) == [
        "ingest.digest.parse (digest) imports ingest.fetch.client (fetch)"
    ]
