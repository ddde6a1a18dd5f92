"""OPS_TOKEN is validated at start and never shown back."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings
from tests.support.ops import OPS_TOKEN


def test_a_short_or_spaced_token_is_refused_without_echoing_it() -> None:
    for bad in ("too-short-secret", "a token with spaces in it, long enough"):
        with pytest.raises(ConfigError) as caught:
            load_settings({"OPS_TOKEN": bad})
        assert "OPS_TOKEN" in str(caught.value) and bad not in str(caught.value)


def test_unset_or_empty_means_super_users_only_and_repr_hides_it() -> None:
    assert load_settings({}).OPS_TOKEN is None
    assert load_settings({"OPS_TOKEN": ""}).OPS_TOKEN is None
    settings = load_settings({"OPS_TOKEN": OPS_TOKEN})
    assert settings.OPS_TOKEN == OPS_TOKEN and OPS_TOKEN not in repr(settings)
