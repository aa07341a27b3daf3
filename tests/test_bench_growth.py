"""The growth benchmark's model (scripts/bench/growthmodel.py): the fit recovers the costs a
node's cells were made of, and the predictions docs/scaling.md builds on follow from them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _growthmodel() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "growthmodel", ROOT / "scripts/bench/growthmodel.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gm = _growthmodel()


def test_least_squares_solves_an_exact_system_and_refuses_an_undetermined_one() -> None:
    # y = 2 + 3a - b on four points
    xs = [[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 2.0, 5.0], [1.0, 4.0, 1.0]]
    ys = [2 + 3 * a - b for _, a, b in xs]
    assert [round(c, 9) for c in gm.least_squares(xs, ys)] == [2.0, 3.0, -1.0]
    with pytest.raises(ValueError):
        gm.least_squares([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0])  # collinear
    with pytest.raises(ValueError):
        gm.least_squares([[1.0, 2.0]], [1.0])  # fewer rows than unknowns


def _cells(model: object) -> list[dict[str, float]]:
    """Cells of a grid as a node made of `model`'s costs would measure them."""
    cells = []
    for workspaces in (1, 10, 100, 1000):
        for agents in (2, 10, 50):
            cell = gm.predicted(model, workspaces, agents, events_per_s=250)
            cells.append(cell)
    return cells


def test_the_fit_recovers_the_costs_the_cells_were_made_of() -> None:
    truth = gm.Model(
        base_mib=110,
        kib_per_socket=24,
        kib_per_room=6,
        event_us=150,
        delivery_us=14,
        room_us=0.3,
        idle_pct=0.5,
        idle_pct_per_1k_sockets=0.4,
    )
    fitted = gm.fit(_cells(truth))
    for field, value in truth.as_dict().items():
        assert getattr(fitted, field) == pytest.approx(value, rel=0.02, abs=0.05), field


def test_a_cell_without_a_figure_is_left_out_of_that_figures_fit() -> None:
    truth = gm.Model(100, 20, 0, 100, 10, 0.2, 1, 0.5)
    cells = _cells(truth)
    cells[0]["us_per_event"] = None  # e.g. a cell whose traffic failed
    cells[1]["rss_idle_mib"] = None
    fitted = gm.fit(cells)
    assert fitted.delivery_us == pytest.approx(10, rel=1e-3)
    assert fitted.kib_per_socket == pytest.approx(20, rel=1e-3)


def test_per_delivery_cost_falls_with_room_size_toward_the_per_socket_cost() -> None:
    model = gm.Model(100, 20, 0, 120, 12, 0.1, idle_pct=0, idle_pct_per_1k_sockets=0)
    assert model.us_per_delivery(2, rooms=0) == pytest.approx(72)  # (120 + 24) / 2
    assert model.us_per_delivery(50, rooms=0) == pytest.approx(14.4)
    assert model.us_per_event(50, rooms=1000) == pytest.approx(820)  # 120 + 600 + 100
    cell = gm.predicted(model, workspaces=1000, agents=50, events_per_s=1000)
    assert cell["sockets"] == 50_000
    assert cell["kib_per_socket"] == pytest.approx(20)
    assert cell["busy_pct"] == pytest.approx(82.0)  # 1000 x 820 µs


def test_the_description_names_every_term() -> None:
    text = gm.Model(110, 23.5, 4, 150, 14, 0.3, 0.5, 0.4).describe()
    assert "110 MiB + 23.5 KiB x sockets + 4.0 KiB x rooms" in text
    assert "150 + 14.0 x room size + 0.300 x rooms" in text


def test_the_largest_miss_is_signed_and_relative_to_the_measured_cell() -> None:
    model = gm.Model(100, 20, 0, 100, 10, 0.2, 1, 0.5)
    cells = _cells(model)
    guess = model.us_per_event(cells[4]["agents"], cells[4]["workspaces"])
    cells[4]["us_per_event"] = guess / 1.25  # the model 25% over
    cells[7]["rss_idle_mib"] *= 2  # the model half of it
    misses = gm.largest_misses(model, cells)
    assert misses["us_per_event"] == pytest.approx(25)
    assert misses["rss_idle_mib"] == pytest.approx(-50, rel=1e-3)
    assert abs(misses["idle_cpu_pct"]) < 0.01
