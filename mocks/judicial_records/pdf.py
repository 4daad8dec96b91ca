"""A minimal, valid one-page PDF written by hand (no PDF library needed for a mock).

The certificate's `phieuLLTP` is this PDF, base64-encoded. It uses the standard Helvetica
font, which has no Vietnamese glyphs, so text is folded to ASCII (`Lý lịch` -> `Ly lich`).
The cross-reference table holds the real byte offsets, so PDF readers open it without repair.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["ascii_fold", "certificate_pdf"]

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_LEFT, _TOP, _LEADING = 56, 780, 20


def ascii_fold(text: str) -> str:
    """Vietnamese text without diacritics (`Đà Nẵng` -> `Da Nang`), printable ASCII only."""
    text = text.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" else "?" for c in folded)


def _pdf_string(text: str) -> str:
    """A PDF literal string: ASCII with `\\`, `(` and `)` escaped."""
    escaped = ascii_fold(text).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


def _content(title: str, lines: Iterable[str]) -> bytes:
    ops = [f"BT /F1 16 Tf {_LEFT} {_TOP} Td {_LEADING} TL {_pdf_string(title)} Tj /F1 11 Tf"]
    ops += [f"T* {_pdf_string(line)} Tj" for line in lines]
    ops.append("ET")
    return "\n".join(ops).encode("ascii")


def certificate_pdf(title: str, lines: Iterable[str]) -> bytes:
    """A one-page PDF showing `title` and then each of `lines`."""
    content = _content(title, lines)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_WIDTH} {_PAGE_HEIGHT}] "
            "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        ).encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # the binary comment marks it as binary
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)
