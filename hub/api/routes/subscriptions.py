"""Routes of the events capability: `/v1/subscriptions` (create, read, change, end; PULL
delivery and acknowledgement). The GovStack IM PubSub paths (govstack.py) serve the same.

Each route is a call through the gateway's own-records path (authentication, rate limit,
audit of the request); the grants of the event type and of the purpose are checked when a
subscription is made or re-activated and again at every delivery. A pulled event is
audited as a delivery about each of its subjects, as a pushed one is.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import caller_headers, envelope, get_hub, read_json, string_path_param
from hub.capabilities.events.subscriptions import Subscriptions, UrlCheck
from hub.capabilities.webhooks import check_callback_url
from hub.core.gateway import CallerHeaders, CallResult
from hub.core.state import Hub
from hub.errors import HubUnavailable
from hub.security.auth import Principal

router = APIRouter(prefix="/v1/subscriptions", tags=["events"])

SERVICE = "events"
_ID = string_path_param("subscription_id", "A subscription id (sub_…)")
_EVENT = string_path_param("event_id", "An event id (evt_…)")

Handler = Callable[[Principal], Awaitable[dict[str, Any]]]


def subscriptions_of(hub: Hub) -> Subscriptions:
    if hub.events is None:
        raise HubUnavailable("the events capability is not running")
    return hub.events.subscriptions


def url_check(hub: Hub) -> UrlCheck:
    return functools.partial(
        check_callback_url,
        https_only=hub.settings.callbacks_https_only,
        public_only=hub.settings.callbacks_public_only,
    )


async def serve(request: Request, operation: str, handler: Handler) -> CallResult:
    """Run `handler(principal)` as an audited call of the events service."""
    hub, caller = get_hub(request), caller_headers(request)

    async def run(principal: Principal) -> tuple[dict[str, Any], str | None]:
        return await handler(principal), None

    return await hub.gateway.local(
        caller, SERVICE, operation, run, personal_data=False, authorize=False
    )


async def pull_next(request: Request, find: Callable[[Principal], str]) -> dict[str, Any] | None:
    """The next event of the subscription `find(principal)` names (None: none waiting).

    The request is a call of its own (rate-limited, so a PULL storm meets the client's
    limit; audited, refusals too, listing no fields); the event it hands out is audited
    as a delivery about each of its subjects, with the fields disclosed."""
    hub, caller = get_hub(request), caller_headers(request)
    pulled: list[dict[str, Any] | None] = [None]

    async def handler(principal: Principal) -> dict[str, Any]:
        pulled[0] = await subscriptions_of(hub).pull(principal, caller, find(principal))
        return {}

    await serve(request, "pull", handler)
    return pulled[0]


def answer(result: CallResult, caller: CallerHeaders, status: int = 200) -> Response:
    return envelope(result, caller.request_id, status_code=status)


@router.post("", status_code=201, summary="Subscribe to an event type (PUSH or PULL)")
async def create(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    subs = subscriptions_of(hub)

    async def handler(principal: Principal) -> dict[str, Any]:
        body = await read_json(request, hub.settings.max_body_bytes)
        return await subs.create(principal, caller, body, url_check(hub))

    result = await serve(request, "subscribe", handler)
    location = f"/v1/subscriptions/{result.data['id']}"
    return envelope(result, caller.request_id, status_code=201, headers={"location": location})


@router.get("", summary="This client's subscriptions")
async def list_all(request: Request) -> Response:
    subs = subscriptions_of(get_hub(request))

    async def handler(principal: Principal) -> dict[str, Any]:
        return {"subscriptions": subs.list(principal)}

    return answer(await serve(request, "subscriptions", handler), caller_headers(request))


@router.get("/{subscription_id}", summary="One subscription, with its backlog", openapi_extra=_ID)
async def get_one(request: Request) -> Response:
    subs, sid = subscriptions_of(get_hub(request)), request.path_params["subscription_id"]

    async def handler(principal: Principal) -> dict[str, Any]:
        return subs.get(principal, sid)

    return answer(await serve(request, "subscription", handler), caller_headers(request))


@router.patch(
    "/{subscription_id}",
    summary="Change a subscription (callback, provinces, TTL, active) or replay from a sequence",
    openapi_extra=_ID,
)
async def change(request: Request) -> Response:
    hub, caller = get_hub(request), caller_headers(request)
    subs, sid = subscriptions_of(hub), request.path_params["subscription_id"]

    async def handler(principal: Principal) -> dict[str, Any]:
        body = await read_json(request, hub.settings.max_body_bytes)
        return await subs.change(principal, caller, sid, body, url_check(hub))

    return answer(await serve(request, "resubscribe", handler), caller)


@router.delete(
    "/{subscription_id}", status_code=204, summary="End a subscription", openapi_extra=_ID
)
async def remove(request: Request) -> Response:
    subs, sid = subscriptions_of(get_hub(request)), request.path_params["subscription_id"]

    async def handler(principal: Principal) -> dict[str, Any]:
        subs.remove(principal, sid)
        return {}

    await serve(request, "unsubscribe", handler)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/events/next",
    summary="PULL: the oldest unacknowledged event (204 when none is waiting)",
    openapi_extra=_ID,
)
async def next_event(request: Request) -> Response:
    sid = request.path_params["subscription_id"]
    body = await pull_next(request, lambda _principal: sid)
    if body is None:
        return Response(status_code=204)
    caller = caller_headers(request)
    result = CallResult(body, SERVICE, "pull", "", 0.0)
    return answer(result, caller)


@router.post(
    "/{subscription_id}/events/{event_id}/ack",
    status_code=204,
    summary="PULL: acknowledge an event (404 unless it is this subscription's)",
    openapi_extra={"parameters": [*_ID["parameters"], *_EVENT["parameters"]]},
)
async def acknowledge(request: Request) -> Response:
    subs = subscriptions_of(get_hub(request))
    sid, eid = request.path_params["subscription_id"], request.path_params["event_id"]

    async def handler(principal: Principal) -> dict[str, Any]:
        subs.acknowledge(principal, sid, eid)
        return {}

    await serve(request, "ack", handler)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/events/{event_id}",
    summary="The delivery state of one event of a subscription",
    openapi_extra={"parameters": [*_ID["parameters"], *_EVENT["parameters"]]},
)
async def event_state(request: Request) -> Response:
    subs = subscriptions_of(get_hub(request))
    sid, eid = request.path_params["subscription_id"], request.path_params["event_id"]

    async def handler(principal: Principal) -> dict[str, Any]:
        return subs.event(principal, sid, eid)

    return answer(await serve(request, "event", handler), caller_headers(request))
