"""The GovStack Information Mediator PubSub paths, over the same subscriptions.

Under `/r1/{instanceId}/{memberClass}/{memberCode}/{applicationCode}` (the hub's identity
from HUB_GOVSTACK_INSTANCE, HUB_GOVSTACK_MEMBER_CLASS and HUB_GOVSTACK_MEMBER_CODE;
`applicationCode` is the service, the spec's "room"), as the GovStack IM PubSub API
describes them:

- `GET …/api/v1/eventType` and `GET …/api/v1/eventType/{eventType}`: the room's event types;
- `GET …/api/v1/subs`, and `POST|GET|PATCH|DELETE …/api/v1/subs/{eventType}`: the caller's
  subscriptions (`{"eventType", "delivery": "PUSH"|"PULL", "options": {"TTL"}}`, and
  `callbackUrl` for PUSH, which the spec leaves to configuration);
- `GET …/pull/v1/{eventType}`: the next unacknowledged event (404 when none);
- `DELETE …/pull/v1/{eventType}/{eventId}`: acknowledge it.

Bodies are the spec's plain JSON (SubscriptionItem, EventItem); errors are the hub's
problem+json. The caller authenticates as on every other route (the spec's mutual TLS is
the deployment's gateway's business).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import caller_headers, get_hub, read_json
from hub.api.routes.subscriptions import pull_next, serve, subscriptions_of, url_check
from hub.core.state import Hub
from hub.errors import NotFound, SchemaViolation, UnknownEvent, UnknownEventType
from hub.security.auth import Principal

PREFIX = "/r1/{instance}/{member_class}/{member_code}/{application}"
router = APIRouter(prefix=PREFIX, tags=["govstack-im"])


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _room(request: Request) -> tuple[Hub, str]:
    """The hub and the service the path names; 404 unless the identity is this hub's."""
    hub, params = get_hub(request), request.path_params
    ours = (
        hub.settings.govstack_instance,
        hub.settings.govstack_member_class,
        hub.settings.govstack_member_code,
    )
    if (params["instance"], params["member_class"], params["member_code"]) != ours:
        raise NotFound("no such member on this Information Mediator")
    service = params["application"]
    if service not in hub.registry or not hub.registry.get(service).cls.event_types:
        raise UnknownEventType("no such application publishing events")
    return hub, service


def _event_type(request: Request) -> tuple[Hub, str]:
    hub, service = _room(request)
    name = request.path_params["event_type"]
    qualified = f"{service}:{name}"
    subscriptions_of(hub).event_type(qualified)  # 404 for an unknown one
    return hub, qualified


def _item(hub: Hub, principal: Principal, view: dict[str, Any]) -> dict[str, Any]:
    """A subscription as the spec's SubscriptionItem (with the hub's own fields beside)."""
    return {
        "id": view["id"],
        "subscriberId": {
            "instanceId": hub.settings.govstack_instance,
            "memberClass": hub.settings.govstack_member_class,
            "memberCode": hub.settings.govstack_member_code,
            "applicationCode": principal.name,
        },
        "eventType": view["event_type"].partition(":")[2],
        "delivery": view["delivery"].upper(),
        "options": {"TTL": view["ttl_s"], "FIFO": True},
        "callbackUrl": view["callback_url"],
        "active": view["active"],
    }


def _as_ours(body: Any, event_type: str | None) -> dict[str, Any]:
    """A SubscriptionItem as the hub's own subscription body."""
    if not isinstance(body, dict):
        raise SchemaViolation("the request body must be a JSON object")
    body = dict(body)
    options = body.pop("options", None) or {}
    if not isinstance(options, dict):
        raise SchemaViolation("options must be an object")
    named = body.pop("eventType", None)
    if event_type is not None and named not in (None, event_type.partition(":")[2]):
        raise SchemaViolation("eventType differs from the path's")
    ours: dict[str, Any] = {}
    if event_type is not None:
        ours["event_type"] = event_type
        ours["delivery"] = str(body.pop("delivery", "PUSH"))
    if "TTL" in options:
        ours["ttl_s"] = options["TTL"]
    if "callbackUrl" in body:
        ours["callback_url"] = body.pop("callbackUrl")
    for name in ("id", "subscriberId"):
        body.pop(name, None)
    return ours | body  # anything else is the hub's own field, or refused (422)


@router.get("/api/v1/eventType", summary="GovStack IM: the event types of a room")
async def event_types(request: Request) -> Response:
    hub, service = _room(request)

    async def handler(principal: Principal) -> dict[str, Any]:
        return {"names": [e.name for e in hub.registry.get(service).cls.event_types]}

    return _json((await serve(request, "event-types", handler)).data["names"])


@router.get("/api/v1/eventType/{event_type}", summary="GovStack IM: an event type's schema")
async def event_type(request: Request) -> Response:
    hub, qualified = _event_type(request)
    _, kind = subscriptions_of(hub).event_type(qualified)

    async def handler(principal: Principal) -> dict[str, Any]:
        return {"eventType": kind.name, "schema": kind.payload.model_json_schema()}

    return _json((await serve(request, "event-type", handler)).data)


@router.get("/api/v1/subs", summary="GovStack IM: my subscriptions in a room")
async def list_subs(request: Request) -> Response:
    hub, service = _room(request)
    subs = subscriptions_of(hub)

    async def handler(principal: Principal) -> dict[str, Any]:
        mine = [v for v in subs.list(principal) if v["event_type"].startswith(service + ":")]
        return {"items": [_item(hub, principal, v) for v in mine]}

    result = await serve(request, "subscriptions", handler)
    return _json(result.data["items"])


@router.post("/api/v1/subs/{event_type}", summary="GovStack IM: add a subscription")
async def add_sub(request: Request) -> Response:
    hub, qualified = _event_type(request)
    caller, subs = caller_headers(request), subscriptions_of(hub)

    async def handler(principal: Principal) -> dict[str, Any]:
        body = _as_ours(await read_json(request, hub.settings.max_body_bytes), qualified)
        return _item(hub, principal, await subs.create(principal, caller, body, url_check(hub)))

    return _json((await serve(request, "subscribe", handler)).data)


@router.get("/api/v1/subs/{event_type}", summary="GovStack IM: a subscription's details")
async def get_sub(request: Request) -> Response:
    hub, qualified = _event_type(request)
    subs = subscriptions_of(hub)

    async def handler(principal: Principal) -> dict[str, Any]:
        return _item(hub, principal, subs.get(principal, subs.find(principal, qualified)))

    return _json((await serve(request, "subscription", handler)).data)


@router.patch("/api/v1/subs/{event_type}", summary="GovStack IM: change a subscription")
async def patch_sub(request: Request) -> Response:
    hub, qualified = _event_type(request)
    caller, subs = caller_headers(request), subscriptions_of(hub)

    async def handler(principal: Principal) -> dict[str, Any]:
        body = await read_json(request, hub.settings.max_body_bytes)
        if isinstance(body, dict) and "delivery" in body:
            raise SchemaViolation("delivery cannot change: delete and subscribe again")
        sid = subs.find(principal, qualified)
        changed = await subs.change(principal, caller, sid, _as_ours(body, None), url_check(hub))
        return _item(hub, principal, changed)

    return _json((await serve(request, "resubscribe", handler)).data, 201)


@router.delete("/api/v1/subs/{event_type}", summary="GovStack IM: cancel a subscription")
async def delete_sub(request: Request) -> Response:
    hub, qualified = _event_type(request)
    subs = subscriptions_of(hub)

    async def handler(principal: Principal) -> dict[str, Any]:
        subs.remove(principal, subs.find(principal, qualified))
        return {}

    await serve(request, "unsubscribe", handler)
    return Response(status_code=204)


@router.get("/pull/v1/{event_type}", summary="GovStack IM: the next unacknowledged event")
async def pull(request: Request) -> Response:
    hub, qualified = _event_type(request)
    subs = subscriptions_of(hub)
    body = await pull_next(request, lambda principal: subs.find(principal, qualified))
    if body is None:
        raise UnknownEvent("no event available")
    return _json(
        {
            "id": body["id"],
            "sequence": body["sequence"],
            "publisherId": {
                "instanceId": hub.settings.govstack_instance,
                "memberClass": hub.settings.govstack_member_class,
                "memberCode": hub.settings.govstack_member_code,
                "applicationCode": qualified.partition(":")[0],
            },
            "eventType": qualified.partition(":")[2],
            "event": body["data"],
            "occurredAt": body["occurred_at"],
            "publishedAt": body["published_at"],
        }
    )


@router.delete("/pull/v1/{event_type}/{event_id}", summary="GovStack IM: confirm an event")
async def confirm(request: Request) -> Response:
    hub, qualified = _event_type(request)
    subs, event_id = subscriptions_of(hub), request.path_params["event_id"]

    async def handler(principal: Principal) -> dict[str, Any]:
        subs.acknowledge(principal, subs.find(principal, qualified), event_id)
        return {}

    await serve(request, "ack", handler)
    return Response(status_code=204)
