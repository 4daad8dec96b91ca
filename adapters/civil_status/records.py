"""The registry's replies read: the `status`/`errorCode` envelope and what each code means,
the people of a record regrouped from its flat prefixed fields, and the marital status a
citizen's records show. All of it is plain data in, plain data out: the adapter
(`adapters.civil_status`) sends the requests and applies the mapping.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from hub.errors import HubError, NotFound, UpstreamBadResponse, UpstreamError, UpstreamRejected
from hub.upstream import raise_for_status, response_json

#: Upstream error codes (`errorCode` of a `status: "0"` reply) and what they mean to the hub.
_ERRORS: dict[str, type[HubError]] = {
    "KHONG_TIM_THAY": NotFound,
    "YEU_CAU_KHONG_HOP_LE": UpstreamRejected,
    "XAC_THUC_THAT_BAI": UpstreamRejected,
    "LOI_HE_THONG": UpstreamError,
}
#: Prefixes of the flat person fields of a record (nksHoTen, chaSoDinhDanh, …).
_PERSON_PREFIXES = ("nks", "cha", "me", "chong", "vo", "nkt", "nyc")
#: The registry's marital-status codes (`tinhTrangHonNhan`), by canonical status.
_MARITAL_CODES = {"single": "1", "married": "2", "divorced": "3", "widowed": "4"}


def read_reply(response: httpx.Response) -> Any:
    """The `data` of a `status: "1"` reply; an error of the hub's tree otherwise.

    The registry answers its errors as `status: "0"` replies on a 4xx or a 5xx, whose
    `errorCode` says more than the HTTP status; any other answer is judged by its status."""
    raise_for_status(response, replies=range(400, 600))
    status = response.status_code
    body = _reply_object(response)
    if body.get("status") == "0":
        code = body.get("errorCode")
        code = code if isinstance(code, str) else None
        fallback = UpstreamError if status >= 500 else UpstreamRejected
        # errorDescription may quote what was asked for: only codes go to the log context.
        context = {"http_status": status, "upstream_code": code}
        raise _ERRORS.get(code or "", fallback)(log_context=context)
    raise_for_status(response)  # an error status without the registry's error reply
    if body.get("status") != "1":
        raise UpstreamBadResponse(log_context={"http_status": status, "cause": "status"})
    return body.get("data")


def _reply_object(response: httpx.Response) -> dict[str, Any]:
    """The reply's JSON object; an error page's status, or UpstreamBadResponse, otherwise."""
    try:
        return response_json(response)
    except UpstreamBadResponse:
        raise_for_status(response)
        raise


def record_list(data: Any) -> list[dict[str, Any]]:
    """The records of a `danhSach` reply; UpstreamBadResponse when it holds something else."""
    records = data.get("danhSach") if isinstance(data, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise UpstreamBadResponse(log_context={"cause": "danhSach is not a list of records"})
    return records


def persons_of(record: dict[str, Any]) -> dict[str, Any]:
    """The record with `nguoi`: its people regrouped from the flat prefixed fields."""
    people = [
        {
            "vaiTro": prefix,
            "hoTen": record.get(f"{prefix}HoTen"),
            "soDinhDanh": record.get(f"{prefix}SoDinhDanh"),
            "ngaySinh": record.get(f"{prefix}NgaySinh"),
        }
        for prefix in _PERSON_PREFIXES
        if record.get(f"{prefix}HoTen")
    ]
    return {**record, "nguoi": people}


def with_persons(data: Any) -> dict[str, Any]:
    """A `danhSach` reply with each record's people regrouped (`persons_of`)."""
    records = record_list(data)
    return {**data, "danhSach": [persons_of(r) for r in records]}


def marital_summary(
    personal_id: str, records: list[dict[str, Any]], today: dt.date
) -> dict[str, Any]:
    """The marital status the records show, in the registry's vocabulary (for the mapping).

    Registration dates are yyyyMMdd strings, so they order as text.
    """
    marriages = [
        r
        for r in records
        if r.get("loaiHoTich") == "KH"
        and personal_id in (r.get("chongSoDinhDanh"), r.get("voSoDinhDanh"))
    ]
    deaths = {
        r["nktSoDinhDanh"]: r
        for r in records
        if r.get("loaiHoTich") == "KT" and r.get("nktSoDinhDanh")
    }
    status, evidence = "single", []
    if marriages:
        latest = max(marriages, key=lambda r: str(r.get("ngayDangKy")))
        husband = latest.get("chongSoDinhDanh") == personal_id
        spouse = latest.get("voSoDinhDanh") if husband else latest.get("chongSoDinhDanh")
        evidence = [latest]
        if latest.get("ghiChuLyHon"):
            status = "divorced"
        elif spouse and spouse in deaths:
            status = "widowed"
            evidence.append(deaths[spouse])
        else:
            status = "married"
    return {
        "soDinhDanh": personal_id,
        "tinhTrangHonNhan": _MARITAL_CODES[status],
        "ngayXacNhan": today.strftime("%Y%m%d"),
        "canCu": [
            {k: r.get(k) for k in ("loaiHoTich", "maHoTich", "ngayDangKy")} for r in evidence
        ],
    }
