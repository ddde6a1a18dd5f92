"""Re-encrypt every channel's stored secrets with the newest key of SECRETS_KEYS."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from engine.db import system_tx
from engine.secrets_box import SecretsBox
from engine.store.channels import get_secrets_batch, set_stored_secrets

ROTATE_BATCH = 200


@dataclass(frozen=True)
class RotationResult:
    channels: int  # examined
    rotated: int  # re-encrypted (plaintext rows or rows sealed with an older key)


def rotate_secrets(db: Engine, box: SecretsBox, *, batch: int = ROTATE_BATCH) -> RotationResult:
    """Seal every channel's secrets with the newest key, one committed batch at a time.

    Idempotent: rows already sealed with the newest key are left alone, so a rerun after an
    interruption only finishes the rest. Raises SecretsUnreadableError when a row opens with
    no configured key (keep the old key in SECRETS_KEYS until rotation has finished).
    """
    after_id = channels = rotated = 0
    while True:
        with system_tx(db) as conn:
            rows = get_secrets_batch(conn, after_id=after_id, limit=batch)
            for channel_id, column in rows:
                sealed = box.reseal(column)
                if sealed is not None:
                    set_stored_secrets(conn, channel_id=channel_id, column=sealed)
                    rotated += 1
        channels += len(rows)
        if len(rows) < batch:
            return RotationResult(channels, rotated)
        after_id = rows[-1][0]
