"""The pieces `hub adapter new --events` adds to the REST templates: one event type fed from
the mock's change feed (the adapter's declaration and `changes()`, the payload model, the
mock's paged feed and `POST /_mock/events`, and the battery's `events` sample).

Each key is a placeholder that stands alone on its line in a template (with its newline),
or inside a line (those without a newline); without `--events` each is filled with nothing.
The pieces use the templates' own placeholders ({{cls}}, {{pkg}}…), filled after them.
"""

from __future__ import annotations

__all__ = ["EVENT_PIECES", "event_replacements"]

EVENT_PIECES: dict[str, str] = {
    "{{events_adapter_imports}}\n": """\
from hub.errors import UpstreamBadResponse
from hub.events import ChangePage, EventType, UpstreamEvent
""",
    "{{events_model_import}}": "RecordChanged, ",
    "{{events_paths}}\n": """\
CHANGES_PATH = "/api/v1/changes"
""",
    "{{events_declaration}}\n": """\
    #: The events it publishes (hub.events), read from upstream's change feed by the core:
    #: agencies subscribe to `{{name}}:record-changed`. An event about a person names
    #: the payload paths of their personal IDs in `subjects` (and keeps personal_data).
    event_types = (
        EventType(
            "record-changed",
            payload=RecordChanged,
            personal_data=False,
        ),
    )
""",
    "{{events_methods}}\n": """\
    async def changes(self, cursor: str | None, limit: int) -> ChangePage:
        \"\"\"The changes after sequence number `cursor`, from upstream's change feed: the
        core stores each page's events and moves its durable cursor in one transaction.\"\"\"
        params = {"after": int(cursor or 0), "limit": limit}
        response = await self.http.get(CHANGES_PATH, params=params, headers=self._headers())
        data = read_json(response).get("data")
        if not isinstance(data, dict):
            raise UpstreamBadResponse(log_context={"cause": "no data in the feed's page"})
        entries, last = data.get("entries"), data.get("last")
        if not isinstance(entries, list) or not isinstance(last, int) or isinstance(last, bool):
            raise UpstreamBadResponse(log_context={"cause": "not a change-feed page"})
        return ChangePage(
            [change_event(entry) for entry in entries],
            cursor=str(last),
            more=data.get("more") is True,
        )

""",
    "{{events_functions}}\n": """\


def change_event(entry: Any) -> UpstreamEvent:
    \"\"\"One feed entry as an event. Its key is upstream's own sequence number, the same
    every time the entry is read, so a page read twice adds nothing.\"\"\"
    if not isinstance(entry, dict) or not isinstance(entry.get("SoThuTu"), int):
        raise UpstreamBadResponse(log_context={"cause": "a feed entry is not a change"})
    try:
        payload = RecordChanged(
            id=entry.get("MaSo"),
            status="active" if entry.get("TrangThai") == "1" else "inactive",
        )
    except ValueError:  # pydantic's ValidationError: not a record's identifier
        raise UpstreamBadResponse(log_context={"cause": "a feed entry is no record"}) from None
    return UpstreamEvent("record-changed", str(entry["SoThuTu"]), payload)
""",
    "{{events_models}}\n": """\


class RecordChanged(CanonicalModel):
    \"\"\"A record's status changed upstream: the payload of `{{name}}:record-changed`.\"\"\"

    id: str = Field(pattern=r"^[0-9]{7}$", description="The record's identifier")
    status: Literal["active", "inactive"] = Field(description="Its status now")
""",
    "{{events_mock_doc}}\n": """\
`GET /api/v1/changes?after=N&limit=M` (the change feed: the entries after sequence number
N, oldest first), `POST /_mock/events` (`{"id": …}`: the record's status flips now),
""",
    "{{events_mock_state}}\n": """\
    changes: list[dict[str, Any]] = []  # the change feed, numbered from 1
""",
    "{{events_mock_handlers}}\n": """\
    async def feed(request: Request) -> JSONResponse:
        if not allowed(request):
            return JSONResponse({"status": "UNAUTHORIZED"}, 401)
        try:
            after = max(int(request.query_params.get("after", "0")), 0)
            limit = min(max(int(request.query_params.get("limit", "100")), 1), 500)
        except ValueError:
            return JSONResponse({"status": "BAD_REQUEST"}, 400)
        entries = changes[after : after + limit]
        last = entries[-1]["SoThuTu"] if entries else after
        page = {"entries": entries, "last": last, "more": last < len(changes)}
        return JSONResponse({"status": "OK", "data": page})

    async def make_event(request: Request) -> JSONResponse:
        try:
            found = records.get(str((await request.json())["id"]))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "body: {id}"}, 400)
        if found is None:
            return JSONResponse({"status": "NOT_FOUND"}, 404)
        found["TrangThai"] = "0" if found["TrangThai"] == "1" else "1"
        entry = {
            "SoThuTu": len(changes) + 1,
            "MaSo": found["MaSo"],
            "TrangThai": found["TrangThai"],
        }
        changes.append(entry)
        return JSONResponse(entry, 201)

""",
    "{{events_mock_routes}}\n": """\
            Route("/api/v1/changes", feed, methods=["GET"]),
            Route("/_mock/events", make_event, methods=["POST"]),
""",
    "{{events_test_sample}}\n": """\


async def a_change(kit: ConformanceHub) -> None:
    \"\"\"The event sample: the mock changes a record's status now (a feed entry).\"\"\"
    made = await kit.mock_request("POST", "/_mock/events", json={"id": KNOWN})
    assert made.status_code == 201, made.text
""",
    "{{events_test_import}}": "ConformanceHub, EventSample, ",
    "{{events_test_attr}}\n": """\
    events: ClassVar[dict[str, EventSample]] = {"record-changed": a_change}
""",
}


def event_replacements(events: bool) -> dict[str, str]:
    """The pieces, or nothing in their places."""
    return {key: (value if events else "") for key, value in EVENT_PIECES.items()}
