"""Encryption of the contact details a person gives for a handoff.

A phone number or email address is the most identifying thing safe-report ever keeps, so
it is never written to disk in the clear: it is encrypted with Fernet (AES-128-CBC +
HMAC-SHA256, from `cryptography`) under SAFE_REPORT_ENCRYPTION_KEY, which lives in `.env`
or the environment, never in DATA_DIR. Staff normally see only a masked form
("ending 123", "a•••@e•••.org"); revealing the full detail is a separate, audited step.

Key rotation: SAFE_REPORT_ENCRYPTION_KEY may hold several keys separated by commas. The
first encrypts; every key is tried when decrypting (cryptography's MultiFernet).
"""

from __future__ import annotations

import re

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.settings import Settings, get_settings

KEY_SETTING = "SAFE_REPORT_ENCRYPTION_KEY"
DOT = "\u2022"  # •
HIDDEN = DOT * 3


class ContactCryptoError(RuntimeError):
    """The contact detail cannot be encrypted or decrypted (missing or wrong key).

    Messages name the setting and the remedy; they never contain the detail or the key.
    """


class ContactCipher:
    """Encrypts and decrypts contact details with the configured key(s)."""

    def __init__(self, key: str | None = None, *, settings: Settings | None = None) -> None:
        if key is None:
            key = (settings or get_settings()).encryption_key
        self._fernet = _load_fernet(key)

    def encrypt(self, detail: str) -> str:
        if not isinstance(detail, str):
            raise TypeError("A contact detail must be text")
        return self._fernet.encrypt(detail.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError) as error:
            raise ContactCryptoError(
                f"The contact detail cannot be decrypted: {KEY_SETTING} is not the key it was "
                "encrypted with (or the stored value is damaged). Restore the key that was in "
                "use when the handoff was made; add it after a comma to rotate keys."
            ) from error


def _load_fernet(raw: str) -> MultiFernet:
    keys = [part.strip() for part in (raw or "").split(",") if part.strip()]
    if not keys:
        raise ContactCryptoError(
            f"{KEY_SETTING} is not set, so contact details cannot be encrypted or read. "
            "Generate one with: python -c \"from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())\" and put it in .env (not in DATA_DIR)."
        )
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode("ascii")))
        except (ValueError, UnicodeError) as error:
            raise ContactCryptoError(
                f"{KEY_SETTING} (key {position}) is not a valid Fernet key: it must be 32 bytes "
                "in url-safe base64 (44 characters ending in '=')."
            ) from error
    return MultiFernet(fernets)


def encrypt(detail: str, settings: Settings | None = None) -> str:
    """Encrypt one contact detail with the key from settings."""
    return ContactCipher(settings=settings).encrypt(detail)


def decrypt(token: str, settings: Settings | None = None) -> str:
    """Decrypt one contact detail with the key(s) from settings."""
    return ContactCipher(settings=settings).decrypt(token)


def mask(detail: str | None, method: str | None) -> str | None:
    """A form of the detail staff can see without revealing it.

    phone/text: "ending 123" (last three digits); email: "a•••@e•••.org". Anything else, or
    too little to mask safely, becomes "•••". None stays None.
    """
    if detail is None:
        return None
    detail = detail.strip()
    if not detail:
        return None
    if method in ("phone", "text"):
        digits = re.sub(r"\D", "", detail)
        if len(digits) < 6:
            return HIDDEN
        return f"ending {digits[-3:]}"
    if method == "email":
        local, at, domain = detail.rpartition("@")
        if not at or not local or "." not in domain:
            return HIDDEN
        labels = [label for label in domain.split(".") if label]
        if len(labels) < 2:
            return HIDDEN
        return f"{local[0]}{HIDDEN}@{labels[0][0]}{HIDDEN}.{labels[-1]}"
    return HIDDEN
