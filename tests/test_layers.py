"""Imports point down the layers: every module's imports, function-level ones included, checked
against one table of rules.

Layers, bottom to top: the vocabulary (``ingest.types``, ``ingest.errors``, ``ingest.urls``,
``ingest.units``) → ``storage`` and the pure logic → adapters → the pipeline (``ingest.pipeline``,
``ingest.writer``, ``ingest.workers``) → the drivers (``scheduler.driver``, ``scheduler.daemon``,
the CLI). The rules name modules by prefix, so moving a module into a package means editing a
prefix here, not the test.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ingest", "storage", "scheduler")

VOCABULARY = ("ingest.types", "ingest.errors", "ingest.urls", "ingest.units")
PIPELINE = ("ingest.pipeline", "ingest.writer", "ingest.workers")
DRIVERS = ("scheduler.driver", "scheduler.daemon", "ingest.cli*", "ingest.launch")


@dataclass(frozen=True, slots=True)
class Rule:
    """``modules`` may import, of the project, only what ``allowed`` names (None: anything)
    and never what ``forbidden`` names; ``exempt`` modules among them are not held to it.

    A prefix names a module and everything inside it (``storage`` is ``storage.models`` too);
    one ending in ``*`` names every module whose name starts so (``ingest.cli*`` is
    ``ingest.cli_feeds`` too).
    """

    name: str
    modules: tuple[str, ...]
    allowed: tuple[str, ...] | None = None
    forbidden: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()


RULES = (
    Rule("the vocabulary imports only itself", VOCABULARY, allowed=VOCABULARY),
    Rule(
        "storage sits at the bottom",
        ("storage",),
        allowed=("storage", "ingest.types", "ingest.errors"),
    ),
    Rule("the schedule policy is pure", ("scheduler.policy",), forbidden=("storage",)),
    Rule("only drivers import drivers", PACKAGES, forbidden=DRIVERS, exempt=DRIVERS),
    Rule(
        "only the pipeline and drivers import the pipeline",
        PACKAGES,
        forbidden=PIPELINE,
        exempt=PIPELINE + DRIVERS,
    ),
)


def matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(
        module.startswith(prefix[:-1])
        if prefix.endswith("*")
        else module == prefix or module.startswith(prefix + ".")
        for prefix in prefixes
    )


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


def violations(rule: Rule, modules: dict[str, Path]) -> list[str]:
    known = set(modules)
    found = []
    for module, path in modules.items():
        if not matches(module, rule.modules) or matches(module, rule.exempt):
            continue
        for imported in sorted(imports_of(module, path.read_text(encoding="utf-8"), known)):
            if matches(imported, rule.forbidden) or (
                rule.allowed is not None and not matches(imported, rule.allowed)
            ):
                found.append(f"{module} imports {imported}")
    return found


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_no_import_crosses_a_layer_the_wrong_way(rule: Rule) -> None:
    modules = project_modules()
    assert any(matches(m, rule.modules) for m in modules), "the rule names no module"
    assert violations(rule, modules) == []


def test_imports_inside_functions_and_relative_ones_count() -> None:
    source = (
        "from . import models\n"
        "from ingest import identity\n"
        "def later():\n"
        "    from scheduler.daemon import Daemon\n"
        "    import ingest.cli_feeds\n"
    )
    known = {"storage.models", "ingest.identity"}
    assert imports_of("storage.engine", source, known) == {
        "storage.models",
        "ingest.identity",
        "scheduler.daemon",
        "ingest.cli_feeds",
    }


def test_an_upward_import_in_storage_is_caught(tmp_path: Path) -> None:
    """The storage rule is not vacuous: the import ``storage.apply`` used to make fails it."""
    modules = project_modules()
    upward = tmp_path / "apply.py"
    upward.write_text("from ingest.identity import decide\n", encoding="utf-8")
    (storage_rule,) = (rule for rule in RULES if rule.name == "storage sits at the bottom")
    assert violations(storage_rule, {**modules, "storage.apply": upward}) == [
        "storage.apply imports ingest.identity"
    ]
