"""Handoff reference codes: short, easy to read out on the phone, not guessable.

A reference is 9 characters from a 31-symbol alphabet with no 0/O, 1/I/L, grouped in
threes: "K7Q-XM2-PRT". Every character comes from `secrets` (a CSPRNG), so a reference
carries log2(31) * 9 ≈ 44.6 bits of entropy and says nothing about when or in what order
handoffs were made. (Eight characters from this alphabet would be only 39.6 bits, below
the 40-bit floor, so there is a ninth; three groups of three are as easy to read aloud.)
"""

from __future__ import annotations

import math
import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 9
GROUP = 3
ENTROPY_BITS = LENGTH * math.log2(len(ALPHABET))

assert not set("01ILO") & set(ALPHABET)
assert ENTROPY_BITS >= 40

PATTERN = re.compile(
    "^" + "-".join([f"[{ALPHABET}]{{{GROUP}}}"] * (LENGTH // GROUP)) + "$"
)


def new_reference() -> str:
    """A fresh random reference, e.g. "K7Q-XM2-PRT"."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def normalize_reference(text: str | None) -> str | None:
    """The canonical form of a reference someone typed or read out, or None if it is not one.

    Case, spaces and dashes do not matter: "k7q xm2 prt" -> "K7Q-XM2-PRT".
    """
    if not isinstance(text, str) or len(text) > 40:
        return None
    raw = re.sub(r"[\s\-\u2010-\u2015]", "", text).upper()
    if len(raw) != LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def is_reference(text: str | None) -> bool:
    return isinstance(text, str) and bool(PATTERN.match(text))
