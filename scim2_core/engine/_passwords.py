"""Password storage: scrypt hashes, never the cleartext.

RFC 7643 §4.1.1: "the service provider SHOULD NOT return the password [...] and SHOULD
store it hashed" (``password`` is ``returned: never``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["hash_password", "verify_password"]


def hash_password(clear: str) -> str:
    """Hash a cleartext password for storage: ``$scrypt$n$r$p$salt$digest``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(clear.encode("utf-8", "surrogatepass"), salt=salt, n=2**14, r=8, p=1)
    return f"$scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def verify_password(stored: str, clear: str) -> bool:
    """True if ``clear`` is the password whose hash is ``stored`` (for host applications)."""
    try:
        _, scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            clear.encode("utf-8", "surrogatepass"),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)
