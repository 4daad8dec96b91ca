"""`Payments`: the payment service of every installed provider, and the default one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from sqlalchemy.engine import Engine
from sqlmodel import Session

from hub.adapter import PaymentProvider
from hub.capabilities.payments.service import PaymentService
from hub.core.config import Settings
from hub.core.gateway import Gateway
from hub.core.models import Payment
from hub.core.registry import AdapterRegistry
from hub.errors import UnknownService


def default_provider(providers: list[str], setting: str | None) -> str | None:
    """The provider `POST /v1/payments` uses when its `?provider=` names none: the setting's
    (HUB_PAYMENT_PROVIDER), else the only one installed; None when there is none.

    Raises ValueError (start-up stops) for a setting naming no installed provider, or for
    several providers and no setting: the hub does not guess which one agencies meant."""
    if setting is not None:
        if setting not in providers:
            installed = ", ".join(providers) or "none"
            raise ValueError(
                f"HUB_PAYMENT_PROVIDER={setting!r} is not an installed payment provider "
                f"(installed: {installed})"
            )
        return setting
    if len(providers) > 1:
        raise ValueError(
            f"several payment providers are installed ({', '.join(providers)}): "
            "set HUB_PAYMENT_PROVIDER to the one POST /v1/payments uses by default"
        )
    return providers[0] if providers else None


class Payments:
    """One PaymentService per installed payment provider, by the provider's name."""

    def __init__(self, services: dict[str, PaymentService], default: str | None) -> None:
        self.services, self.default = services, default

    def __iter__(self) -> Iterator[PaymentService]:
        return iter(self.services.values())

    def __len__(self) -> int:
        return len(self.services)

    def get(self, name: str | None = None) -> PaymentService:
        """The named provider's service (None: the default's); UnknownService otherwise."""
        name = name or self.default
        if name is None:
            raise UnknownService("no payment provider is installed")
        service = self.services.get(name)
        if service is None:
            raise UnknownService("no payment provider by that name")
        return service

    async def of_payment(
        self, engine: Engine, payment_id: str
    ) -> tuple[PaymentService, Payment | None]:
        """A payment (None: no such payment) and the service of the provider it was opened
        through. An unknown payment gets the default's, whose view then answers 404 like any
        payment not the caller's (after the grant check, as for one that exists)."""
        payment = await asyncio.to_thread(_payment, engine, payment_id)
        name = payment.service if payment is not None else None
        return self.get(name if name in self.services else None), payment


def _payment(engine: Engine, payment_id: str) -> Payment | None:
    if len(payment_id) > 40:
        return None
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Payment, payment_id)


def payment_services(
    registry: AdapterRegistry,
    gateway: Gateway,
    engine: Engine,
    settings: Settings,
    default: str | None,
) -> Payments:
    """A payment service for every installed PaymentProvider adapter."""
    services = {
        loaded.cls.name: PaymentService(
            gateway,
            engine,
            service=loaded.cls.name,
            https_callbacks_only=settings.callbacks_https_only,
            public_callbacks_only=settings.callbacks_public_only,
            query_after_s=settings.payment_query_after_s,
            query_max_s=settings.payment_query_max_s,
            lost_after_s=settings.payment_lost_after_s,
            query_until_s=settings.payment_query_until_s,
        )
        for loaded in registry
        if issubclass(loaded.cls, PaymentProvider)
    }
    return Payments(services, default)
