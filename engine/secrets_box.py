"""Channel secrets sealed at rest: Fernet with SECRETS_KEYS (newest first), rotation-ready.

A sealed column value is `{"v": 1, "ct": <Fernet token>, "set": [names of the secrets held]}`.
`set` lets the API say which secrets a channel has without opening the box. A column without
`v` is a plaintext row from before encryption: it is still read, and sealed on rotation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from config import ConfigError, Settings, load_settings
from engine.errors import PermanentError
from engine.events import ChannelSecrets

log = logging.getLogger(__name__)

SEALED_VERSION = 1
KEY_FILE = "secrets.key"


class SecretsUnreadableError(PermanentError):
    """A sealed value no configured key opens (a key was dropped from SECRETS_KEYS)."""


class SecretsBox:
    """Seal with the first key; open with any of them."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError("SECRETS_KEYS: at least one key is required")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(k) for k in keys])

    def seal(self, secrets: ChannelSecrets) -> str:
        """The column value (JSON text) holding `secrets` encrypted with the newest key."""
        values = secrets.model_dump(exclude_none=True)
        token = self._primary.encrypt(json.dumps(values).encode()).decode()
        return json.dumps({"v": SEALED_VERSION, "ct": token, "set": sorted(values)})

    def open(self, column: str) -> ChannelSecrets:
        """The secrets in a column value, sealed or legacy plaintext.

        Raises SecretsUnreadableError when no configured key opens it.
        """
        stored = json.loads(column)
        if not is_sealed(stored):
            return ChannelSecrets.model_validate(stored)
        try:
            plain = self._all.decrypt(str(stored["ct"]).encode())
        except InvalidToken:
            raise SecretsUnreadableError(
                "channel secrets: no key in SECRETS_KEYS opens them"
            ) from None
        return ChannelSecrets.model_validate_json(plain)

    def reseal(self, column: str) -> str | None:
        """The column value sealed with the newest key, or None when it already is."""
        stored = json.loads(column)
        if is_sealed(stored):
            try:
                self._primary.decrypt(str(stored["ct"]).encode())
                return None
            except InvalidToken:
                pass
        return self.seal(self.open(column))


def is_sealed(stored: object) -> bool:
    return isinstance(stored, dict) and stored.get("v") == SEALED_VERSION and "ct" in stored


def box_from_settings(settings: Settings) -> SecretsBox:
    """SECRETS_KEYS when set; otherwise a key kept in the data dir (created on first use).

    The key file suits one machine. A configured (external) database is shared by hosts that
    each need the same key, so that case is warned about: set SECRETS_KEYS there.
    """
    if settings.SECRETS_KEYS:
        return SecretsBox(list(settings.SECRETS_KEYS))
    if settings.database_configured:
        log.warning(
            "SECRETS_KEYS is not set: channel secrets use a key file in FLOWDESK_DATA_DIR; "
            "set SECRETS_KEYS so every host shares the key"
        )
    return SecretsBox([_key_file(Path(settings.FLOWDESK_DATA_DIR) / KEY_FILE)])


def _key_file(path: Path) -> str:
    """The key in `path`, created once with mode 0600.

    The key is written to a private temporary file and linked into place, so a racing
    process either wins or reads the winner's complete key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        try:
            with os.fdopen(fd, "w") as f:  # mkstemp creates the file 0600
                f.write(Fernet.generate_key().decode())
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"SECRETS_KEYS: unset, and the key file {path} is empty")
    return key


_lock = threading.Lock()
_box: SecretsBox | None = None


def install_box(box: SecretsBox | None) -> None:
    """Use `box` in this process (composition roots, tests); None: build from settings again."""
    global _box
    with _lock:
        _box = box


@contextlib.contextmanager
def box_for(settings: Settings) -> Iterator[SecretsBox]:
    """Use the box `settings` name for the duration (a command that was handed its settings
    rather than reading the environment, e.g. the demo), then the one in use before."""
    global _box
    box = box_from_settings(settings)
    with _lock:
        before, _box = _box, box
    try:
        yield box
    finally:
        with _lock:
            _box = before


def current_box() -> SecretsBox:
    """This process's box, built from the environment's settings on first use."""
    global _box
    with _lock:
        if _box is None:
            _box = box_from_settings(load_settings())
        return _box


def seal_secrets(secrets: ChannelSecrets) -> str:
    return current_box().seal(secrets)


def open_secrets(column: str) -> ChannelSecrets:
    return current_box().open(column)
