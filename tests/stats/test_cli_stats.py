"""`flowdesk stats`, run in-process against the hand-checkable world."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_SERVER
from tests.stats.world import World
from tests.support.cli import cli_env, invoke, logging_restored


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch,
    stats_url: str,
    world: World,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[object]:
    cli_env(monkeypatch, database_url=stats_url, redis_url=REDIS_SERVER)
    with logging_restored():
        yield lambda *argv: invoke(capsys, argv)


def test_prints_a_table_of_the_period(run, world: World) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(
        "stats", "--tenant", str(world.tenant_a), "--from", "2024-05-01", "--to", "2024-05-02"
    )

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Tenant {world.tenant_a} · 2024-05-01 .. 2024-05-02 (America/Sao_Paulo)"
    assert lines[3].split() == ["2024-05-01", "4", "5", "4"]
    assert lines[4].split() == ["2024-05-02", "3", "1", "2"]
    assert lines[5].split() == ["total", "7", "6", "6"]
    assert [(line[:24].strip(), line[24:].split()) for line in lines[8:12]] == [
        ("first response", ["4", "16m15s", "15m00s", "27m00s"]),
        ("in business hours", ["4", "10m00s", "5m00s", "24m00s"]),
        ("resolution", ["3", "8h40m", "1h00m", "19h24m"]),
        ("in business hours", ["3", "3h20m", "1h00m", "7h24m"]),
    ]
    assert "first-contact resolution: 33% (1 of 3 closed tickets)" in out
    assert "backlog now: 1 pending, 1 open" in out


def test_json_by_channel(run, world: World) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(
        "--json", "stats", "--tenant", str(world.tenant_a), "--from", "2024-05-01",
        "--to", "2024-05-02", "--group-by", "channel",
    )  # fmt: skip

    assert code == 0, err
    data = json.loads(out)
    assert data["period"] == {
        "from": "2024-05-01",
        "to": "2024-05-02",
        "time_zone": "America/Sao_Paulo",
    }
    assert [(r["label"], r["inbound"]) for r in data["volume"]] == [
        ("WhatsApp Sales", 3),
        ("Telegram", 4),
    ]
    assert data["resolution"]["overall"]["tickets"] == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "2024-05-03", "--to", "2024-05-01"], "--to: must not be before from"),
        (["--from", "2022-01-01", "--to", "2024-05-01"], "--to: the period may span at most 366"),
        (["--from", "31/05/2024"], "is not a date like 2024-05-31"),
        (["--group-by", "weekday"], "invalid choice: 'weekday'"),
    ],
)
def test_bad_options_exit_2_naming_the_option(
    run, world: World, argv: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = run("stats", "--tenant", str(world.tenant_a), *argv)

    assert code == 2
    assert message in err


def test_an_unknown_tenant_is_refused(run, world: World) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = run("stats", "--tenant", "999999")

    assert code == 2
    assert "--tenant: no tenant 999999" in err
