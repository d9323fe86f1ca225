"""Receipt codes and PINs for anonymous reporters (as StopNCII does). Django-free."""

from __future__ import annotations

import hashlib
import hmac
import secrets

# Crockford's base32: no I, L, O or U, so codes survive being read aloud or copied by hand.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10  # 50 bits
PIN_LENGTH = 6
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_pin() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(PIN_LENGTH))


def format_code(code: str) -> str:
    """'ABCDE12345' → 'ABCDE-12345' for display."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalise_code(text: str) -> str:
    """Accept what people type: lower case, spaces, dashes, O for 0, I/L for 1."""
    cleaned = "".join(char for char in text.upper() if char.isalnum())
    return cleaned.translate(_CONFUSABLE)


def pin_digest(*, pepper: str, code: str, pin: str) -> str:
    """HMAC of the PIN bound to its code. A 6-digit PIN is weak on its own; the server-side
    pepper makes an offline guess impossible without the key, and the status page is throttled."""
    message = f"{code}:{pin.strip()}".encode()
    return hmac.new(pepper.encode(), message, hashlib.sha256).hexdigest()


def pin_matches(*, pepper: str, code: str, pin: str, digest: str) -> bool:
    return hmac.compare_digest(pin_digest(pepper=pepper, code=code, pin=pin), digest)
