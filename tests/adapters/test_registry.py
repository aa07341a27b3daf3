"""One adapter per platform channel kind, behind one protocol, and the rules that keep
platform behaviour inside `adapters/`: the hub never compares a channel kind to a platform,
`adapters/` never imports the hub, and the adapters' modules import one another without a
cycle."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters import registry
from adapters.protocol import Adapter
from schemas.message import ChannelKind

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent.parent
PLATFORM_KINDS = [kind for kind in ChannelKind if kind is not ChannelKind.WEBCHAT]
PLATFORM_NAMES = {kind.name for kind in PLATFORM_KINDS}
PLATFORM_VALUES = {kind.value for kind in PLATFORM_KINDS}
MEMBERS = [name for name in dir(Adapter) if not name.startswith("_")]


@pytest.mark.parametrize("kind", PLATFORM_KINDS, ids=str)
def test_every_platform_kind_has_an_adapter_that_satisfies_the_protocol(kind: ChannelKind) -> None:
    adapter = registry.adapter_for(kind)
    assert isinstance(adapter, Adapter)
    assert adapter.kind is kind
    assert registry.get(kind.value) is adapter  # the stored value finds it as well
    for name in MEMBERS:
        member = getattr(type(adapter), name, None)
        expected = getattr(Adapter, name)
        if isinstance(expected, property):
            assert hasattr(adapter, name), name
        else:
            assert callable(member), name
            assert inspect.iscoroutinefunction(member) == inspect.iscoroutinefunction(expected)
            assert list(inspect.signature(member).parameters) == list(
                inspect.signature(expected).parameters
            ), name


def test_the_registry_lists_each_platform_once() -> None:
    assert sorted(registry.kinds()) == sorted(PLATFORM_KINDS)
    assert [a.kind for a in registry.adapters()] == list(registry.kinds())
    assert {a.kind for a in registry.family("meta")} == {
        ChannelKind.INSTAGRAM,
        ChannelKind.MESSENGER,
        ChannelKind.WHATSAPP,
    }
    assert [a.kind for a in registry.family("telegram")] == [ChannelKind.TELEGRAM]


@pytest.mark.parametrize("kind", [ChannelKind.WEBCHAT, "webchat", "fax", "", None])
def test_the_registry_refuses_a_kind_without_an_adapter(kind: object) -> None:
    assert registry.get(kind) is None
    with pytest.raises(registry.UnknownKind, match="no platform adapter for channel kind") as err:
        registry.adapter_for(kind)
    assert err.value.kind == kind
    assert isinstance(err.value, LookupError)


def modules(package: str) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), str(path))


def is_platform(node: ast.AST) -> bool:
    """`ChannelKind.TELEGRAM` and its kin, or a string naming a platform kind."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id == "ChannelKind" and node.attr in PLATFORM_NAMES
    return isinstance(node, ast.Constant) and node.value in PLATFORM_VALUES


def platform_branches(tree: ast.Module) -> Iterator[ast.AST]:
    """Comparisons with a platform kind (also inside a tuple or set compared with `in`), and
    any naming of a platform member of ChannelKind at all (a tuple of kinds kept for a later
    `in` is the same branch)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                if any(is_platform(inner) for inner in ast.walk(operand)):
                    yield node
        elif isinstance(node, ast.Attribute) and is_platform(node):
            yield node


def test_the_hub_never_branches_on_a_platform_kind() -> None:
    found = [
        f"{name}:{node.lineno}: {ast.unparse(node)}"
        for name, tree in modules("hub")
        for node in platform_branches(tree)
    ]
    assert found == [], "ask adapters.registry instead:\n" + "\n".join(found)


def test_the_scan_sees_what_it_forbids() -> None:
    caught = [
        "kind == ChannelKind.TELEGRAM",
        "kind is not ChannelKind.WHATSAPP",
        "row.kind in ('instagram', 'messenger')",
        "KINDS = (ChannelKind.INSTAGRAM, ChannelKind.MESSENGER)",
        "'telegram' != kind",
    ]
    passed = ["kind == ChannelKind.WEBCHAT", "registry.get(kind) is None", "kind == 'webchat'"]
    assert all(list(platform_branches(ast.parse(code))) for code in caught)
    assert not any(list(platform_branches(ast.parse(code))) for code in passed)


def module_imports(tree: ast.Module, name: str, known: set[str]) -> Iterator[str]:
    """Every module a module imports, wherever: at module level, under `if TYPE_CHECKING:`
    and inside functions (an import put off to run time only hides a cycle). `from a import
    b` is the module `a.b` when it is one."""
    is_package = (ROOT / name.replace(".", "/") / "__init__.py").exists()
    package = name if is_package else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package up
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                whole = f"{base}.{alias.name}"
                yield whole if whole in known else base


def test_adapters_never_import_the_hub() -> None:
    known = {name for name, _ in modules("adapters")}
    found = [
        f"{name} imports {imported}"
        for name, tree in modules("adapters")
        for imported in module_imports(tree, name, known)
        if imported == "hub" or imported.startswith("hub.")
    ]
    assert found == []


def test_the_adapters_import_one_another_without_a_cycle() -> None:
    trees = dict(modules("adapters"))
    known = set(trees)
    graph = {
        name: {imported for imported in module_imports(tree, name, known) if imported in known}
        for name, tree in trees.items()
    }
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
