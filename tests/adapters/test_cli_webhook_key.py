"""How ``scim2-core serve --webhook`` finds its signing key, and what it refuses at start-up."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from scim2_core.serving import _cli

pytest.importorskip("joserfc")


def _args(**given: object) -> argparse.Namespace:
    values = {"webhook_secret": None, "webhook_secret_file": None, "webhook_key_file": None}
    values.update(given)
    return argparse.Namespace(**values)


def test_a_secret_from_the_flag_the_file_or_the_environment(tmp_path: Path) -> None:
    secret = "s" * 32
    assert _cli.webhook_key(_args(webhook_secret=secret), {}) is not None
    assert _cli.webhook_key(_args(), {_cli.WEBHOOK_SECRET_ENV: secret}) is not None
    path = tmp_path / "secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    assert _cli.webhook_key(_args(webhook_secret_file=str(path)), {}) is not None


@pytest.mark.parametrize(
    ("given", "env", "message"),
    [
        ({"webhook_secret": "x" * 32, "webhook_key_file": "k.pem"}, {}, "give one of"),
        ({}, {}, "at least"),
        ({"webhook_secret": "short"}, {}, "at least"),
        ({"webhook_secret_file": "/nonexistent/secret"}, {}, "webhook-secret-file"),
    ],
)
def test_a_missing_short_or_doubled_key_is_refused_by_name(
    given: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(_cli._UsageError, match=message):
        _cli.webhook_key(_args(**given), env)


def test_a_key_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a PEM key")
    with pytest.raises(_cli._UsageError, match="webhook key"):
        _cli.webhook_key(_args(webhook_key_file=str(path)), {})
