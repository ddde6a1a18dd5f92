"""`flowdesk campaign import` (a CSV list of phones and names) and `report`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from api.cli import CliError, Output
from api.cli_campaigns.common import cli_db, progress_bar, tenant_of
from engine.campaigns import CsvImportError, parse_csv
from engine.campaigns.csv_import import MAX_CSV_BYTES
from engine.db import system_tx, tenant_tx
from engine.store import campaigns as store


def cmd_import(args: argparse.Namespace, settings: Any, out: Output) -> None:
    from engine.store.channels import get_channel

    path = Path(args.file)
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise CliError(f"{path}: larger than {MAX_CSV_BYTES // (1024 * 1024)} MB")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text; save the file as UTF-8 CSV") from None
    db = cli_db(settings)
    with system_tx(db) as conn:
        channel = get_channel(conn, args.channel)
    if channel is None:
        raise CliError(f"--channel: no channel {args.channel}")
    try:
        parsed = parse_csv(text)
    except CsvImportError as exc:
        raise CliError(f"{path}: {exc}") from None
    with tenant_tx(db, channel.tenant_id) as conn:
        result = store.insert_import(
            conn,
            tenant_id=channel.tenant_id,
            channel_id=channel.id,
            channel_type=channel.type.value,
            parsed=parsed,
            user_id=None,
            filename=path.name[:200],
        )
    lines = [
        f"import {result.id}: {result.valid} of {result.total_rows} rows kept "
        f"({result.created} new contacts), {result.error_count} bad",
        *(f"  line {e.line}: {e.reason}" for e in result.errors),
    ]
    if result.errors_truncated:
        more = result.error_count - len(result.errors)
        lines.append(f"  … and {more} more bad rows (all kept with import {result.id})")
    lines.append(f"target it with: flowdesk campaign create --import {result.id} …")
    out.emit(result.model_dump(mode="json"), "\n".join(lines))


def cmd_report(args: argparse.Namespace, settings: Any, out: Output) -> None:
    from api.campaigns.reports import EXPORT_COLUMNS

    db = cli_db(settings)
    tenant_id = tenant_of(db, args.campaign_id)
    with tenant_tx(db, tenant_id) as conn:
        found = store.report(conn, args.campaign_id, tenant_id=tenant_id)
        if found is not None and args.csv:
            _write_export(conn, args, tenant_id, EXPORT_COLUMNS)
    if found is None:
        raise CliError(f"no campaign {args.campaign_id}")
    lines = [f"campaign {found.campaign_id}: {found.status.value}", progress_bar(found.counts)]
    lines += [f"  failed  {f.cause or '(no code)'}: {f.count}" for f in found.failures]
    lines += [f"  skipped {s.cause or '(no reason)'}: {s.count}" for s in found.skipped]
    lines += [f"  variant {v.variant}: {progress_bar(v.counts)}" for v in found.variants]
    if args.csv:
        lines.append(f"contacts written to {args.csv}")
    out.emit(found.model_dump(mode="json"), "\n".join(lines))


def _write_export(
    conn: Connection, args: argparse.Namespace, tenant_id: int, columns: tuple[str, ...]
) -> None:
    import csv

    from api.campaigns.reports import export_cells

    try:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in store.export_rows(conn, args.campaign_id, tenant_id=tenant_id):
                writer.writerow(export_cells(row))
    except OSError as exc:
        raise CliError(f"--csv: {exc.strerror or exc}") from None
