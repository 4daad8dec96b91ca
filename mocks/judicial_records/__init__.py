"""Mock of the judicial-records (criminal-record certificate, LLTP) system, asynchronous REST.

`mocks.judicial_records.app.create_app()` builds the ASGI app; the contract is
docs/mock-judicial-records.md. Modules: `app` (the HTTP protocol), `form` (the application
form as upstream reads it), `service` (the applications' life cycle), `outcome` (who is issued
what, deterministically), `push` (the signed push of results), `pdf` (the certificate's
minimal PDF).
"""

from __future__ import annotations

from mocks.judicial_records.push import DEFAULT_PUSH_URL, sign

__all__ = ["DEFAULT_PUSH_URL", "sign"]
