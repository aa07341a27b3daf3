"""The layout's rules (scripts/check-imports): no import cycle, adapters free of hub, schemas
free of hub, adapters and I/O libraries, folders and files within their sizes. The same check
is run here over the repo, and over small made-up trees that break each rule once."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check-imports"


def _load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("check_imports", str(SCRIPT))  # no .py suffix
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


check = _load()


def test_no_import_cycle() -> None:
    assert check.cycle_breaches(check.discover(ROOT)) == []


def test_adapters_and_schemas_keep_to_their_layer() -> None:
    assert check.layering_breaches(check.discover(ROOT)) == []


def test_folders_and_files_within_their_sizes() -> None:
    assert check.size_breaches(ROOT) == []


def test_importing_schemas_loads_no_io_library() -> None:
    assert check.runtime_breaches(ROOT) == []


def test_the_script_passes_on_the_repo() -> None:
    assert os.access(SCRIPT, os.X_OK)
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def tree(root: Path, files: dict[str, str]) -> Path:
    for name in ("hub", "adapters", "schemas"):
        (root / name).mkdir(exist_ok=True)
        (root / name / "__init__.py").touch()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_through_type_checking_is_found(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "hub/a.py": "from hub.b import thing\n",
            "hub/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from hub.c import Other\n"
                "thing = 1\n"
            ),
            "hub/c.py": "from . import a\nclass Other: ...\n",
            "hub/d.py": "def later() -> None:\n    from hub.a import x\n",  # deferred: no edge
            "hub/e.py": "import hub.d\n",
        },
    )
    [breach] = check.cycle_breaches(check.discover(root))
    assert breach.startswith("import cycle among hub.a, hub.b, hub.c;")
    assert breach.endswith("hub.a -> hub.b -> hub.c -> hub.a")


def test_a_deferred_import_is_no_cycle(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "hub/a.py": "import hub.b\n",
            "hub/b.py": "async def later() -> None:\n    import hub.a\n",
        },
    )
    assert check.cycle_breaches(check.discover(root)) == []


def test_layering_breaches_are_named(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "adapters/meta.py": "def send() -> None:\n    from hub.bus import Bus\n",
            "adapters/fine.py": "import httpx\nfrom schemas.message import Message\n",
            "schemas/wire.py": "import redis.asyncio\nfrom adapters import meta\n",
            "schemas/codes.py": "from hub import errors\n",
            "schemas/fine.py": "import json\nfrom pydantic import BaseModel\n",
        },
    )
    assert check.layering_breaches(check.discover(root)) == [
        "adapters.meta (adapters) imports hub",
        "schemas.codes (schemas) imports hub",
        "schemas.wire (schemas) imports adapters",
        "schemas.wire (schemas) imports redis",
    ]


@pytest.mark.parametrize("count", [20, 21])
def test_a_folder_of_more_than_twenty_modules(tmp_path: Path, count: int) -> None:
    modules = {f"hub/many/m{i}.py": "" for i in range(count - 1)}
    root = tree(tmp_path, {"hub/many/__init__.py": "", **modules})
    found = check.size_breaches(root)
    assert found == ([] if count <= 20 else ["hub/many/ holds 21 modules (most 20)"])


def test_a_file_of_more_than_six_hundred_lines(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "hub/short.py": "x = 1\n" * 600,
            "hub/long.py": "x = 1\n" * 601,
            "scripts/tool": "#!/usr/bin/env python3\n" + "x = 1\n" * 600,
            "scripts/notes": "#!/bin/bash\n" + "true\n" * 700,
        },
    )
    assert check.size_breaches(root) == [
        "hub/long.py has 601 lines (most 600)",
        "scripts/tool has 601 lines (most 600)",
    ]


def _calls(name: str) -> list[str]:
    """Where hub/ calls `name(...)`, as path:line."""
    import ast

    found = []
    for path in sorted(ROOT.glob("hub/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
                called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                if called == name:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_an_audit_row_is_built_by_one_helper() -> None:
    built = _calls("AuditEvent")
    assert len(built) == 1 and built[0].startswith("hub/storage/audit.py:"), built


def test_a_missing_channel_is_one_error() -> None:
    said = [
        f"{path.relative_to(ROOT)}"
        for path in ROOT.glob("hub/**/*.py")
        if '"No such channel.' in path.read_text()
    ]
    assert said == ["hub/errors.py"], said
