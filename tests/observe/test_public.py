"""The public names of ``scim2_core.observe``: a sorted ``__all__`` naming things that exist."""

from __future__ import annotations

import scim2_core.observe as observe


def test_all_is_sorted_and_complete() -> None:
    exported = list(observe.__all__)

    def key(n: str) -> tuple[int, str]:
        return (0 if n.isupper() else 1 if n[0].isupper() else 2, n)

    assert exported == sorted(exported, key=key)
    assert all(hasattr(observe, name) for name in exported)
