"""The console's statistics page, signed in with the ops token, over the hand-checkable world."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from engine.stats.svg import Series, bar_chart, nice_ceiling
from tests.stats.world import World
from tests.support.harness import RunningEngine, running_engine
from tests.support.ops import OPS_TOKEN


@pytest.fixture
def web(stats_url: str, world: World, redis_url: str, queue_prefix: str) -> Iterator[RunningEngine]:
    with running_engine(
        database_url=stats_url,
        redis_url=redis_url,
        queue_prefix=queue_prefix,
        start_worker=False,
        OPS_TOKEN=OPS_TOKEN,
    ) as running:
        yield running


def _signed_in(c: httpx.Client) -> None:
    form = c.get("/ops/console/login")
    login_token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert login_token is not None
    signed = c.post("/ops/console/login", data={"login_token": login_token[1], "token": OPS_TOKEN})
    assert signed.status_code == 303


def test_the_page_shows_tables_and_charts(web: RunningEngine, world: World) -> None:
    with web.client() as c:
        assert c.get("/ops/console/stats").headers["location"] == "/ops/console/login"
        _signed_in(c)
        page = c.get(
            "/ops/console/stats",
            params={"tenant": world.tenant_a, "from": "2024-05-01", "to": "2024-05-02"},
        )

    assert page.status_code == 200, page.text
    html = page.text
    assert "Statistics · Stats A" in html
    assert html.count("<svg") == 2  # volume and backlog
    assert "2024-05-01 · inbound: 4</title>" in html
    volume = re.search(r'<table id="volume">(.*?)</table>', html, re.S)
    assert volume is not None
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", volume[1])
    assert cells == ["2024-05-01", "4", "5", "4", "2024-05-02", "3", "1", "2"]
    assert "<strong>33%</strong>" in html
    assert "First response in business hours" in html


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"tenant": "abc"}, 400, "tenant: must be a tenant id"),
        ({"tenant": "1", "from": "2024-13-01"}, 400, "from: must be a date"),
        ({"tenant": "1", "from": "2024-05-03", "to": "2024-05-01"}, 400, "to: must not be before"),
        ({"tenant": "1", "group_by": "weekday"}, 400, "group_by: must be one of"),
        ({"tenant": "999999"}, 404, "tenant: no tenant 999999"),
    ],
)
def test_bad_choices_are_named(
    web: RunningEngine, world: World, params: dict[str, str], status: int, says: str
) -> None:
    with web.client() as c:
        _signed_in(c)
        page = c.get("/ops/console/stats", params=params)

    assert page.status_code == status
    assert says in page.text


def test_chart_labels_are_escaped() -> None:
    svg = bar_chart("Volume <by> queue", ["<script>x</script>", "B&B"], [Series("in", [3, 12])])

    assert "<script>" not in svg
    assert "&lt;script&gt;x&lt;/script&gt;" in svg and "B&amp;B" in svg
    assert svg.count("<rect") == 2 + 1  # two bars and one legend swatch
    assert "B&amp;B · in: 12</title>" in svg


def test_axis_tops_are_round() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 12, 120, 501)] == [1, 1, 5, 20, 200, 1000]
