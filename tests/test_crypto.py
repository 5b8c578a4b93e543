"""Contact-detail encryption (bot.privacy.crypto): round trip, clear errors, masking."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from bot.privacy.crypto import HIDDEN, ContactCipher, ContactCryptoError, decrypt, encrypt, mask
from bot.settings import load_settings

KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()


def test_round_trip_and_ciphertext_hides_the_detail():
    cipher = ContactCipher(KEY)
    token = cipher.encrypt("07700 900123")
    assert "900123" not in token
    assert token.startswith("gAAAA")  # a Fernet token
    assert cipher.decrypt(token) == "07700 900123"
    assert cipher.encrypt("07700 900123") != token  # random IV each time


@given(st.text(max_size=200))
def test_round_trip_any_text(detail):
    cipher = ContactCipher(KEY)
    assert cipher.decrypt(cipher.encrypt(detail)) == detail


def test_key_comes_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SAFE_REPORT_ENCRYPTION_KEY", KEY)
    settings = load_settings()
    token = encrypt("a@example.org", settings)
    assert decrypt(token, settings) == "a@example.org"
    assert ContactCipher(KEY).decrypt(token) == "a@example.org"


@pytest.mark.parametrize("missing", ["", "  ", ","])
def test_missing_key_is_a_clear_error(missing):
    with pytest.raises(ContactCryptoError, match="SAFE_REPORT_ENCRYPTION_KEY is not set"):
        ContactCipher(missing)


def test_missing_key_from_settings_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SAFE_REPORT_ENCRYPTION_KEY", "")
    with pytest.raises(ContactCryptoError, match="is not set"):
        encrypt("07700 900123", load_settings())


@pytest.mark.parametrize("bad", ["not-a-key", "a" * 44, KEY[:-2]])
def test_malformed_key_is_a_clear_error(bad):
    with pytest.raises(ContactCryptoError, match="not a valid Fernet key") as caught:
        ContactCipher(bad)
    assert bad not in str(caught.value)  # never echo the key


def test_wrong_key_is_a_clear_error_without_the_detail():
    token = ContactCipher(KEY).encrypt("07700 900123")
    with pytest.raises(ContactCryptoError, match="not the key it was encrypted with") as caught:
        ContactCipher(OTHER_KEY).decrypt(token)
    assert "900123" not in str(caught.value)
    with pytest.raises(ContactCryptoError):
        ContactCipher(KEY).decrypt("damaged" + token)


def test_key_rotation_decrypts_with_any_listed_key():
    old_token = ContactCipher(OTHER_KEY).encrypt("old@example.org")
    rotated = ContactCipher(f"{KEY}, {OTHER_KEY}")
    assert rotated.decrypt(old_token) == "old@example.org"
    new_token = rotated.encrypt("new@example.org")
    assert ContactCipher(KEY).decrypt(new_token) == "new@example.org"  # first key encrypts


@pytest.mark.parametrize(
    ("detail", "method", "masked"),
    [
        ("07700 900123", "phone", "ending 123"),
        ("+44 7700-900-987", "text", "ending 987"),
        ("alice@example.org", "email", "a•••@e•••.org"),
        ("bob.smith@mail.example.co.uk", "email", "b•••@m•••.uk"),
        ("12", "phone", HIDDEN),
        ("not an email", "email", HIDDEN),
        ("x@localhost", "email", HIDDEN),
        ("whatever", "self", HIDDEN),
        ("", "phone", None),
        (None, "phone", None),
    ],
)
def test_mask(detail, method, masked):
    assert mask(detail, method) == masked


@given(st.from_regex(r"\+?[0-9 ]{6,20}", fullmatch=True))
def test_masked_phone_shows_at_most_three_digits(number):
    masked = mask(number, "phone")
    assert sum(ch.isdigit() for ch in masked) <= 3


@given(st.emails())
def test_masked_email_never_contains_the_address(address):
    masked = mask(address, "email")
    local, _, domain = address.rpartition("@")
    if len(local) > 1:
        assert local not in masked
    assert address not in masked
