"""Payments as a capability: the core's side of every payment, for any payment provider.

An adapter that subclasses `hub.adapter.PaymentProvider` gets a `PaymentService`
(service.py): the Idempotency-Key, the reference sent upstream, the verified callback
applied once (settle.py), background queries of pending payments (queries.py) and the daily
reconciliation (reconcile.py). `Payments` (desk.py) holds one service per installed provider
and says which one `POST /v1/payments` uses by default. The core names no provider.
"""
