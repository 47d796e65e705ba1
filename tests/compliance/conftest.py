"""Fixtures of the compliance tests (see served.py)."""

from served import db_url, serve

__all__ = ["db_url", "serve"]
