"""Mock of the National Population Database (SOAP 1.1, see docs/mock-population.md).

`mocks.population.app.create_app()` builds the ASGI app; `WSDL_PATH` is the service
description on disk (the mock also serves it at `GET /dancu/ws?wsdl`).
"""

from __future__ import annotations

from pathlib import Path

WSDL_PATH = Path(__file__).with_name("population.wsdl")
SERVICE_PATH = "/dancu/ws"
REQUEST_NAMESPACE = "http://dancuquocgia.bca"
RESPONSE_NAMESPACE = "http://www.mic.gov.vn/dancu/1.0"

__all__ = ["REQUEST_NAMESPACE", "RESPONSE_NAMESPACE", "SERVICE_PATH", "WSDL_PATH"]
