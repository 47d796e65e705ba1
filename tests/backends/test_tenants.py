"""An empty tenant name is refused where it is configured, so no backend ever sees one.

Every backend refuses it on every call too (the contract suite,
``test_empty_tenant_name_is_refused_not_merged_with_no_tenant``): SQL stores tenant None
as ``''``, so an empty name would read and write the single-tenant data.
"""

from __future__ import annotations

import pytest

from scim2_core import ConfigurationError, Principal, bearer_tokens


def test_a_principal_with_an_empty_tenant_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="tenant"):
        Principal("client", tenant="")
    assert Principal("client").tenant is None
    assert Principal("client", tenant="acme").tenant == "acme"


def test_a_bearer_token_mapped_to_an_empty_tenant_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="tenant"):
        bearer_tokens({"secret-1": "acme", "secret-2": ""})
