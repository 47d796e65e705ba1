"""``python -m scim2_core serve``: see :mod:`scim2_core._cli`."""

from __future__ import annotations

import sys

from .serving._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
