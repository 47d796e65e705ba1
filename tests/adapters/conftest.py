"""Adapter tests: put this folder on sys.path for ``adapter_clients`` and set up Django."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from adapter_clients import configure_django

configure_django()
