"""Masking secrets: every form a secret takes in a test's output becomes ``[secret:NAME]``."""

from __future__ import annotations

import base64
import binascii

import pytest

from onwatch.errors import SecretTooShort
from onwatch.masking import Hit, Masker, encodings

# Slash, plus, equals, ampersand, quote, tilde, non-ASCII: each encoding changes it.
SECRET = 'Pr0d/T0ken+K3y=!&é"~>?'
PEM = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj
  MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
ab
-----END PRIVATE KEY-----"""

# Each form written out as the encoder in question prints it, not computed by onwatch: a form
# dropped from onwatch.masking fails here.
FORMS = [
    ("raw", SECRET, SECRET),
    ("URL, all encoded", SECRET, "Pr0d%2FT0ken%2BK3y%3D%21%26%C3%A9%22~%3E%3F"),
    ("URL, lower-case escapes", SECRET, "Pr0d%2fT0ken%2bK3y%3d%21%26%c3%a9%22~%3e%3f"),
    ("URL path, / kept", SECRET, "Pr0d/T0ken%2BK3y%3D%21%26%C3%A9%22~%3E%3F"),
    ("URL as httpx, requests and Chromium send it", SECRET, "Pr0d/T0ken+K3y=!&%C3%A9%22~%3E?"),
    ("URL as encodeURIComponent writes it", SECRET, "Pr0d%2FT0ken%2BK3y%3D!%26%C3%A9%22~%3E%3F"),
    ("URL as URLSearchParams writes it", SECRET, "Pr0d%2FT0ken%2BK3y%3D%21%26%C3%A9%22%7E%3E%3F"),
    ("URL userinfo", SECRET, "Pr0d%2FT0ken+K3y=!&%C3%A9%22~%3E%3F"),
    ("URL query, + for a space", "correct horse+battery", "correct+horse%2Bbattery"),
    ("JSON", SECRET, r"Pr0d/T0ken+K3y=!&\u00e9\"~>?"),
    ("JSON, non-ASCII kept", SECRET, r"Pr0d/T0ken+K3y=!&é\"~>?"),
    ("JSON, / escaped", SECRET, r"Pr0d\/T0ken+K3y=!&\u00e9\"~>?"),
    ("HTML", SECRET, "Pr0d/T0ken+K3y=!&amp;é&quot;~&gt;?"),
    ("HTML text, quotes kept", SECRET, 'Pr0d/T0ken+K3y=!&amp;é"~&gt;?'),
    ("HTML, &#x27;", "it's-a-s3cret", "it&#x27;s-a-s3cret"),
    ("HTML, &#39;", "it's-a-s3cret", "it&#39;s-a-s3cret"),
    ("Python ascii() and pytest test ids", SECRET, r'Pr0d/T0ken+K3y=!&\xe9"~>?'),
    ("Python repr() of bytes", SECRET, r'Pr0d/T0ken+K3y=!&\xc3\xa9"~>?'),
    ("Python repr() of a JSON body", SECRET, r'Pr0d/T0ken+K3y=!&\\u00e9\\"~>?'),
    ("JSON text in a JSON log line", SECRET, r"Pr0d/T0ken+K3y=!&\\u00e9\\\"~>?"),
    ("JSON text in a Playwright trace", SECRET, r"Pr0d/T0ken+K3y=!&é\\\"~>?"),
    ("base64", SECRET, "UHIwZC9UMGtlbitLM3k9ISbDqSJ+Pj8="),
    ("base64, no padding", SECRET, "UHIwZC9UMGtlbitLM3k9ISbDqSJ+Pj8"),
    ("base64 URL-safe", SECRET, "UHIwZC9UMGtlbitLM3k9ISbDqSJ-Pj8="),
    ("URL password", "postgresql://bob:p4ssw0rd!@db.example.com/prod", "p4ssw0rd!"),
    ("URL user:password", "postgresql://bob:p4ssw0rd!@db.example.com/prod", "bob:p4ssw0rd!"),
    (
        "a line of a multi-line secret",
        PEM,
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
    ),
    (
        "an indented line, stripped",
        PEM,
        "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    ),
]


@pytest.mark.parametrize(("encoding", "secret", "form"), FORMS, ids=[f[0] for f in FORMS])
def test_each_form_of_a_secret_is_masked_whole(encoding: str, secret: str, form: str) -> None:
    masker = Masker({"API_TOKEN": secret})
    assert masker.mask(f"server said <{form}> twice: {form}") == (
        "server said <[secret:API_TOKEN]> twice: [secret:API_TOKEN]"
    )


def residue(masked: str, placeholder: str = "[secret:API_TOKEN]") -> list[bytes]:
    """Return every byte string that the base64 around the placeholder decodes to."""
    decoded = []
    for piece in masked.split(placeholder):
        text = piece.split("Basic ")[-1].strip()
        for start in range(4):  # whatever the alignment of what is left
            chunk = text[start:].rstrip("=").replace("-", "+").replace("_", "/")
            if len(chunk) % 4 == 1:  # not a whole number of bytes
                chunk = chunk[:-1]
            try:
                decoded.append(base64.b64decode(chunk + "=" * (-len(chunk) % 4)))
            except binascii.Error:
                pass
    return decoded


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize(
    "encode", [base64.b64encode, base64.urlsafe_b64encode], ids=["standard", "url-safe"]
)
@pytest.mark.parametrize("suffix", [b"", b"@ex"], ids=["at-the-end", "inside"])
@pytest.mark.parametrize("prefix", range(6))
def test_base64_of_the_secret_inside_a_longer_string_cannot_be_decoded_back(
    prefix: int, suffix: bytes, encode: object, padded: bool
) -> None:
    data = b"alice:"[:prefix] + SECRET.encode() + suffix
    encoded = encode(data).decode()  # type: ignore[operator]
    if not padded:
        encoded = encoded.rstrip("=")
    masked = Masker({"API_TOKEN": SECRET}).mask(f"Authorization: Basic {encoded}")
    assert masked.count("[secret:API_TOKEN]") == 1
    # What is left around the placeholder encodes the neighbouring bytes, and no run of three
    # bytes of the secret, whatever the alignment it is decoded at.
    pieces = [SECRET.encode()[i : i + 3] for i in range(len(SECRET.encode()) - 2)]
    for decoded in residue(masked):
        assert not any(piece in decoded for piece in pieces), decoded


def test_a_multi_line_secret_is_masked_whole_and_line_by_line() -> None:
    masker = Masker({"KEY": PEM})
    assert masker.mask(f"key:\n{PEM}\nend") == "key:\n[secret:KEY]\nend"
    lines = PEM.splitlines()
    printed = f"first {lines[1]} then\n\t{lines[2].strip()}!"
    assert masker.mask(printed) == "first [secret:KEY] then\n\t[secret:KEY]!"
    assert masker.mask(repr(PEM)) == "'[secret:KEY]'"
    # A line too short to mask without hiding ordinary words stays.
    assert masker.mask("ab cd") == "ab cd"


def test_a_short_secret_is_refused_with_what_to_do() -> None:
    with pytest.raises(SecretTooShort) as caught:
        Masker({"API_TOKEN": SECRET, "PIN": "12345"})
    message = str(caught.value)
    assert "secret PIN has 5 characters" in message
    assert "6 or more" in message and "use a longer value" in message
    assert "12345" not in message


def test_values_are_masked_inside_nested_structures_keys_included() -> None:
    masker = Masker({"API_TOKEN": SECRET})
    value = {
        "headers": {"Authorization": f"Bearer {SECRET}"},
        f"token {SECRET}": [SECRET, (f"?t={SECRET}", 3), None, 2.5, True],
    }
    assert masker.mask_value(value) == {
        "headers": {"Authorization": "Bearer [secret:API_TOKEN]"},
        "token [secret:API_TOKEN]": [
            "[secret:API_TOKEN]",
            ("?t=[secret:API_TOKEN]", 3),
            None,
            2.5,
            True,
        ],
    }


def test_bytes_are_masked_and_other_bytes_are_kept() -> None:
    masker = Masker({"API_TOKEN": SECRET})
    basic = base64.b64encode(f"al:{SECRET}".encode())
    data = b"\xff\xfe not UTF-8 " + SECRET.encode() + b" Basic " + basic + b"\n"
    masked = masker.mask_bytes(data)
    assert masked.startswith(b"\xff\xfe not UTF-8 [secret:API_TOKEN] Basic ")
    assert masked.count(b"[secret:API_TOKEN]") == 2 and SECRET.encode() not in masked
    assert [hit.name for hit in masker.find_bytes(data)] == ["API_TOKEN", "API_TOKEN"]


def test_an_empty_masker_changes_nothing() -> None:
    masker = Masker()
    text = f"nothing to hide: {SECRET}"
    assert not masker
    assert masker.mask(text) is text
    assert masker.mask_bytes(text.encode()) == text.encode()
    assert masker.mask_value({"a": [text]}) == {"a": [text]}
    assert masker.find(text) == []


def test_masking_twice_changes_nothing_more() -> None:
    masker = Masker({"API_TOKEN": SECRET, "KEY": PEM})
    text = " | ".join(text for value in (SECRET, PEM) for _, text in encodings(value))
    once = masker.mask(text)
    assert masker.mask(once) == once
    assert masker.mask_bytes(once.encode()) == once.encode()


def test_it_says_where_and_in_which_form_a_secret_was_found() -> None:
    masker = Masker({"API_TOKEN": SECRET})
    text = "GET /x?token=Pr0d%2FT0ken%2BK3y%3D%21%26%C3%A9%22~%3E%3F"
    assert masker.find(text) == [Hit("API_TOKEN", "url", 13, len(text))]


def test_a_rotated_secret_keeps_its_old_value_masked() -> None:
    masker = Masker({"API_TOKEN": SECRET}).merged({"API_TOKEN": "n3w-t0ken-value"})
    assert masker.mask(f"{SECRET} then n3w-t0ken-value") == (
        "[secret:API_TOKEN] then [secret:API_TOKEN]"
    )


def test_the_pieces_of_a_secret_cut_by_a_shortened_repr_are_masked() -> None:
    masker = Masker({"API_TOKEN": "Pr0d/T0ken+K3y=!&"})
    assert masker.mask("'Account Pr0d/T0k...n+K3y=!& x'") == (
        "'Account [secret:API_TOKEN]...[secret:API_TOKEN] x'"
    )
    # Ordinary text around "..." stays, and so do pieces too short to tell apart from it.
    assert masker.mask("wait... then Pr0...K3y") == "wait... then Pr0...K3y"
