"""Mock of the national public-service payment platform (Nền tảng thanh toán), REST/JSON.

`mocks.payment.app.create_app()` builds the ASGI app; the contract is docs/mock-payment.md.
Modules: `app` (the HTTP routes: the endpoint, the pay page, the mock-only routes),
`platform` (the transactions, the four operations, settlement), `checksum` (MaXacThuc, both
ways), `messages` (the requests as the platform reads them), `ipn` (the signed callback with
retries), `pages` (the pay page's HTML), `procedures` (sample things to pay for, with payers
from the population data set).
"""
