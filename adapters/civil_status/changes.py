"""The registry's change feed (biến động hộ tịch) as hub events: the event types the
adapter publishes, and a page of the feed read into them. The core polls the feed through
`CivilStatusAdapter.changes`, which fetches the page and hands it here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from adapters.civil_status.models import (
    BirthRegistered,
    CivilStatusRecord,
    DeathRegistered,
    MarriageRegistered,
)
from hub.errors import UpstreamBadResponse
from hub.events import ChangePage, EventType, UpstreamEvent

#: A registry record (its JSON object) -> the canonical record, through the adapter's mapping.
Canonical = Callable[[dict[str, Any]], CivilStatusRecord]

#: The events the adapter publishes from the feed (biến động hộ tịch), polled by the core.
EVENT_TYPES = (
    EventType(
        "birth-registered",
        payload=BirthRegistered,
        subjects=("personal_id", "mother_personal_id", "father_personal_id"),
        province="province_code",
    ),
    EventType(
        "death-registered",
        payload=DeathRegistered,
        subjects=("personal_id",),
        province="province_code",
    ),
    EventType(
        "marriage-registered",
        payload=MarriageRegistered,
        subjects=("husband_personal_id", "wife_personal_id"),
        province="province_code",
    ),
)

#: The change feed's kinds of change and the event types they publish.
_CHANGES = {
    "DANG_KY_KHAI_SINH": "birth-registered",
    "DANG_KY_KHAI_TU": "death-registered",
    "DANG_KY_KET_HON": "marriage-registered",
}


def read_changes(data: Any, canonical: Canonical) -> ChangePage:
    """One page of the feed (the `data` of its reply) as events, and the cursor after it."""
    if not isinstance(data, dict) or not isinstance(data.get("danhSach"), list):
        raise UpstreamBadResponse(log_context={"cause": "danhSach is not a list"})
    events = [_event(entry, canonical) for entry in data["danhSach"]]
    last = data.get("soThuTuCuoi")
    if not isinstance(last, int) or isinstance(last, bool) or last < 0:
        raise UpstreamBadResponse(log_context={"cause": "soThuTuCuoi is not a number"})
    return ChangePage(
        events=[e for e in events if e is not None],
        cursor=str(last),
        more=data.get("conDuLieu") is True,
    )


def _event(entry: Any, canonical: Canonical) -> UpstreamEvent | None:
    """One feed entry as an event (None for a kind of change no event type covers)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("hoTich"), dict):
        raise UpstreamBadResponse(log_context={"cause": "a feed entry is not a record"})
    record, change = entry["hoTich"], entry.get("loaiBienDong")
    kind = _CHANGES.get(change) if isinstance(change, str) else None
    if kind is None:
        return None
    record_model = canonical(record)
    authority = record.get("noiDangKy")
    province = authority.get("maTinh") if isinstance(authority, dict) else None
    common: dict[str, Any] = {"province_code": province, "record": record_model}
    payload: BaseModel
    if kind == "death-registered":
        payload = DeathRegistered(personal_id=record.get("nktSoDinhDanh"), **common)
    elif kind == "birth-registered":
        payload = BirthRegistered(
            personal_id=record.get("nksSoDinhDanh"),
            mother_personal_id=record.get("meSoDinhDanh"),
            father_personal_id=record.get("chaSoDinhDanh"),
            **common,
        )
    else:
        payload = MarriageRegistered(
            husband_personal_id=record.get("chongSoDinhDanh"),
            wife_personal_id=record.get("voSoDinhDanh"),
            **common,
        )
    occurred = entry.get("thoiDiem")
    try:
        when = dt.datetime.fromisoformat(occurred) if isinstance(occurred, str) else None
    except ValueError:
        when = None
    # The record number is the registration's own, for ever: the event's stable key.
    return UpstreamEvent(kind, f"{change}:{record_model.number}", payload, when)
