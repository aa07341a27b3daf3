"""The clients' copy of the v2 rebuild (`unlean` in hub/static/hubsocket.js, which the inbox
and the widget share) against the reference in `schemas.lean`: the same v1 data from the same
lean data, for messages of every kind, run by Node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import lean
from schemas.events import MessageCreated
from tests.test_lean_frames import messages_created

pytestmark = pytest.mark.unit

HUBSOCKET = Path(__file__).parent.parent / "hub" / "static" / "hubsocket.js"
RUN = """
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(input.map(([data, workspace]) => unlean(data, workspace))));
"""


def unlean_in_node(cases: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node is not installed")
    script = HUBSOCKET.read_text().removesuffix("export { hubSocket };\n") + RUN
    done = subprocess.run(
        [node, "-e", script], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages_created(), min_size=5, max_size=10))
def test_the_clients_rebuild_is_the_references(batch: list[MessageCreated]) -> None:
    cases = [(json.loads(lean.lean(d)), str(d.message.workspace_id)) for d in batch]
    rebuilt = unlean_in_node(cases)
    for data, (lean_data, workspace), found in zip(batch, cases, rebuilt, strict=True):
        assert found == lean.rebuild(lean_data, workspace) == json.loads(data.dump())
