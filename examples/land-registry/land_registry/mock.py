"""A mock of the provincial land registry (REST/JSON, an API key), for tests and testers.

Run it: `python -m land_registry.mock --port 8198`
(`--fault latency=200 --fault error=0.1` for faults from start-up). Faults come from the
hub's fault switch (`mocks.faults`): the `X-Mock-Fault` header per request,
`PUT|DELETE /_mock/faults` at run time.

Routes (both need `X-API-Key`):

- `GET /api/v1/thua-dat/{MaThua}`: `{"TrangThai": "OK", "DuLieu": {…}}`, or 404
  `{"TrangThai": "KHONG_TIM_THAY"}`;
- `GET /api/v1/chu-su-dung/{SoDinhDanh}/thua-dat?trang=N&soBanGhi=M`: one page,
  `{"TrangThai": "OK", "SoDinhDanh", "Trang", "SoBanGhi", "TongSo", "DanhSach": […]}` (an
  empty list for a person with no parcel);
- `GET /api/v1/suc-khoe`: the health URL; `GET /_mock/records?limit=N`, `GET /_mock/health`.
"""

from __future__ import annotations

import argparse
import hmac
import json
from importlib import resources
from typing import Any

from mocks.faults import FaultConfig, FaultSwitch, parse_fault_options, with_faults
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["MAX_PAGE_SIZE", "create_app", "load_records"]

#: The most parcels one page holds (the adapter asks for fewer).
MAX_PAGE_SIZE = 50


def load_records() -> dict[str, dict[str, Any]]:
    """The sample parcels, by parcel id (`sample_data.json`, the registry's field names)."""
    data = resources.files("land_registry") / "sample_data.json"
    return {parcel["MaThua"]: parcel for parcel in json.loads(data.read_text(encoding="utf-8"))}


def _number(request: Request, name: str, default: int, high: int) -> int | None:
    value = request.query_params.get(name, str(default))
    if not value.isdigit() or not 1 <= int(value) <= high:
        return None
    return int(value)


def create_app(
    *, api_key: str = "land-registry-key", faults: FaultConfig | None = None
) -> FaultSwitch:
    """The mock as an ASGI app (tests run it in-process behind httpx.ASGITransport), with
    the fault switch around it; `faults` are the start-up faults."""
    parcels = load_records()
    expected = api_key.encode()

    def allowed(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("x-api-key", "").encode(), expected)

    def refused() -> JSONResponse:
        return JSONResponse({"TrangThai": "LOI"}, 401)

    async def parcel(request: Request) -> JSONResponse:
        if not allowed(request):
            return refused()
        found = parcels.get(request.path_params["parcel_id"])
        if found is None:
            return JSONResponse({"TrangThai": "KHONG_TIM_THAY"}, 404)
        return JSONResponse({"TrangThai": "OK", "DuLieu": found})

    async def of_owner(request: Request) -> JSONResponse:
        if not allowed(request):
            return refused()
        page = _number(request, "trang", 1, 10_000)
        size = _number(request, "soBanGhi", 20, MAX_PAGE_SIZE)
        if page is None or size is None:
            return JSONResponse({"TrangThai": "LOI"}, 400)
        person = request.path_params["personal_id"]
        owned = [p for p in parcels.values() if p["ChuSuDung"]["SoDinhDanh"] == person]
        return JSONResponse(
            {
                "TrangThai": "OK",
                "SoDinhDanh": person,
                "Trang": page,
                "SoBanGhi": size,
                "TongSo": len(owned),
                "DanhSach": owned[(page - 1) * size : page * size],
            }
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"TrangThai": "OK"}) if allowed(request) else refused()

    async def listing(request: Request) -> JSONResponse:
        limit = _number(request, "limit", 20, 1000) or 20
        return JSONResponse({"records": list(parcels.values())[:limit]})

    async def alive(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/api/v1/thua-dat/{parcel_id}", parcel, methods=["GET"]),
            Route("/api/v1/chu-su-dung/{personal_id}/thua-dat", of_owner, methods=["GET"]),
            Route("/api/v1/suc-khoe", health, methods=["GET"]),
            Route("/_mock/records", listing, methods=["GET"]),
            Route("/_mock/health", alive, methods=["GET"]),
        ]
    )
    return with_faults(app, faults, error=lambda: JSONResponse({"TrangThai": "LOI"}, 500))


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8198)
    parser.add_argument("--fault", action="append", default=[], help="e.g. latency=200")
    args = parser.parse_args()
    app = create_app(faults=parse_fault_options(args.fault))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
