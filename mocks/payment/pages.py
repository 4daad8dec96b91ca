"""The pay page the payer is sent to (`UrlThanhToan`), as plain HTML.

It shows the amount and the description, and two buttons that post `outcome=success` or
`outcome=failed` back to the same address. Everything shown is escaped.
"""

from __future__ import annotations

from html import escape

__all__ = ["message_page", "outcome_page", "pay_page", "vnd"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}"
    "dt{color:#555}button{font-size:1rem;padding:.6rem 1.4rem;margin-right:.8rem}"
    ".pay{background:#0a6d2c;color:#fff;border:0}.fail{background:#fff;border:1px solid #a00}"
)


def vnd(amount: int) -> str:
    """An amount the Vietnamese way: `150.000 ₫`."""
    return f"{amount:,}".replace(",", ".") + " ₫"


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _details(transaction_id: str, amount: int, description: str) -> str:
    return (
        "<dl>"
        f"<dt>Mã giao dịch</dt><dd>{escape(transaction_id)}</dd>"
        f'<dt>Số tiền</dt><dd id="amount">{escape(vnd(amount))}</dd>'
        f'<dt>Nội dung</dt><dd id="description">{escape(description)}</dd>'
        "</dl>"
    )


def pay_page(transaction_id: str, amount: int, description: str) -> str:
    """The page of a pending transaction, with its Pay and Fail buttons."""
    form = (
        f'<form method="post" action="/pay/{escape(transaction_id)}">'
        '<button class="pay" type="submit" name="outcome" value="success">'
        "Thanh toán (Pay)</button>"
        '<button class="fail" type="submit" name="outcome" value="failed">'
        "Thất bại (Fail)</button></form>"
    )
    return _page(
        "Cổng thanh toán dịch vụ công (mock)",
        _details(transaction_id, amount, description) + form,
    )


def outcome_page(transaction_id: str, amount: int, description: str, paid: bool) -> str:
    """The page of a settled transaction (shown when there is no `UrlTraVe`)."""
    title = "Thanh toán thành công" if paid else "Thanh toán không thành công"
    status = "paid" if paid else "failed"
    return _page(
        title,
        f'<p id="status" data-status="{status}">{escape(title)}</p>'
        + _details(transaction_id, amount, description),
    )


def message_page(title: str, text: str) -> str:
    """A page with a short message (an unknown transaction, a bad form)."""
    return _page(title, f"<p>{escape(text)}</p>")
