"""`flowdesk secrets rotate` and `flowdesk contact export|erase`: data protection commands."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config import Settings


def add_protect_commands(sub: Any, add: Callable[..., Any]) -> None:
    """Register the commands on the `flowdesk` parser (`add` is api.cli's helper)."""
    from api.cli import positive_int

    secrets = sub.add_parser("secrets", help="channel secrets at rest").add_subparsers(
        dest="secrets_command", required=True
    )
    p = add("rotate", cmd_secrets_rotate, "re-encrypt every channel's secrets, newest key", secrets)
    p.add_argument("--batch", type=positive_int, default=200)

    contact = sub.add_parser("contact", help="contact data (LGPD/GDPR)").add_subparsers(
        dest="contact_command", required=True
    )
    p = add("export", cmd_contact_export, "everything held about a contact, as JSON", contact)
    p.add_argument("--tenant", type=positive_int, required=True)
    p.add_argument("--contact", type=positive_int, required=True)
    p.add_argument("--output", type=Path, help="write to this file instead of stdout")
    p = add("erase", cmd_contact_erase, "erase a contact's personal data (irreversible)", contact)
    p.add_argument("--tenant", type=positive_int, required=True)
    p.add_argument("--contact", type=positive_int, required=True)
    p.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")


def cmd_secrets_rotate(args: argparse.Namespace, settings: Settings, out: Any) -> None:
    from api.cli import _db
    from engine.privacy.secrets_rotation import rotate_secrets
    from engine.secrets_box import box_from_settings

    result = rotate_secrets(_db(settings), box_from_settings(settings), batch=args.batch)
    out.emit(
        {"channels": result.channels, "rotated": result.rotated},
        f"{result.rotated} of {result.channels} channels re-encrypted with the newest key",
    )


def cmd_contact_export(args: argparse.Namespace, settings: Settings, out: Any) -> None:
    from api.cli import CliError, _db
    from engine.db import tenant_tx
    from engine.privacy.export import export_contact

    with tenant_tx(_db(settings), args.tenant) as conn:
        document = export_contact(
            conn, tenant_id=args.tenant, contact_id=args.contact, user_id=None
        )
    if document is None:
        raise CliError(f"--contact: tenant {args.tenant} has no contact {args.contact}")
    text = document.model_dump_json(indent=2)
    if args.output is None:
        print(text)
        return
    try:  # personal data: created readable by its owner only, never briefly by others
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        args.output.chmod(0o600)  # a file that existed keeps its old mode otherwise
    except OSError as exc:
        raise CliError(f"--output: cannot write {args.output}: {exc.strerror}") from None
    out.emit({"written": str(args.output)}, f"export written to {args.output}")


def cmd_contact_erase(args: argparse.Namespace, settings: Settings, out: Any) -> None:
    from actors.wiring import media_storage
    from api.cli import CliError, _db
    from engine.db import tenant_tx
    from engine.privacy.erase import erase_contact
    from engine.privacy.redaction import delete_media_files

    if not args.yes:
        raise CliError("--yes: required; erasure cannot be undone")
    storage = media_storage(settings)
    with tenant_tx(_db(settings), args.tenant) as conn:
        result = erase_contact(conn, tenant_id=args.tenant, contact_id=args.contact, user_id=None)
    if result is None:
        raise CliError(f"--contact: tenant {args.tenant} has no contact {args.contact}")
    deleted = delete_media_files(storage, result.media_uris)
    changed = sum(result.counts.values())
    out.emit(
        {"contact_id": result.contact_id, "counts": result.counts, "media_files_deleted": deleted},
        f"contact {result.contact_id} erased: {changed} rows changed, {deleted} media files "
        "deleted\n" + json.dumps(result.counts, indent=2),
    )
