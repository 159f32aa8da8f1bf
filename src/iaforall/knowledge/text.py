"""Bytes of a text file -> str, in whatever encoding it was written, or a clear refusal.

A byte-order mark decides first (UTF-8, UTF-16, UTF-32), or NULs in every other byte (UTF-16
without one); then strict UTF-8, which nearly every modern file is; then an encoding an HTML
page declares; then UTF-8 again with a very few stray bytes replaced; then charset-normalizer's
detector, whose answer is kept only when the text it gives reads as text.
"""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from iaforall.knowledge.errors import UnreadableDocument

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_DECLARED = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")
MAX_CONTROL_SHARE = 0.01
MAX_STRAY_SHARE = 0.001  # bytes that are not UTF-8 in otherwise UTF-8 text
MAX_CHAOS = 0.1  # charset-normalizer's "mess" measure: 0 reads cleanly, 1 is noise
DETECT_BYTES = 1_000_000  # enough to recognise an encoding; the whole text is decoded after


def decode_text(data: bytes, *, html: bool = False) -> str:
    text = _decode(data, html=html)
    if text.startswith("\ufeff"):
        text = text[1:]
    if _CONTROL.search(text) and len(_CONTROL.findall(text)) > len(text) * MAX_CONTROL_SHARE:
        raise _undecodable()
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, *, html: bool) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _strict(data[len(bom) :], encoding)
    if b"\x00" in data[:4096] and (utf16 := _utf16_by_zeros(data[:4096])):
        return _strict(data, utf16)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if html and (declared := _DECLARED.search(data[:4096])):
        try:
            return data.decode(declared[1].decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration: detect instead
    # UTF-8 with a few stray bytes (a pasted cp1252 quote, a damaged byte) keeps its text: a
    # detector would read it all as some legacy encoding and garble every accent
    mended = data.decode("utf-8", errors="replace")
    if mended.count("\ufffd") <= len(mended) * MAX_STRAY_SHARE:
        return mended
    best = from_bytes(data[:DETECT_BYTES]).best()
    if best is None or best.chaos > MAX_CHAOS:
        raise _undecodable()
    return _strict(data, best.encoding)


def _utf16_by_zeros(head: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-Latin text puts a NUL in every other byte."""
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > len(odd) * 0.4:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.4:
        return "utf-16-be"
    return None


def _strict(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        raise _undecodable() from None


def _undecodable() -> UnreadableDocument:
    return UnreadableDocument(
        "The text of this document is in an encoding we cannot recognise with confidence. "
        "Save it as UTF-8 and upload it again.",
        code="unknown_encoding",
    )
