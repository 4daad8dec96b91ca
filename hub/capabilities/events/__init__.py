"""Events to agencies as a capability, for every adapter that declares event types
(hub.events): publish/subscribe in the manner of the GovStack Information Mediator.

- feed.py: any hub process leases a service's feed cursor, reads a page of `changes()`,
  stores its events and fans them out to the matching subscriptions, and moves the cursor,
  all in one transaction (store.py). Events pushed to the hub (a payment settled) are
  published through the same store.
- delivery.py: PUSH subscriptions are sent by any hub process holding the subscription's
  lease, one event at a time in order (FIFO), signed as the hub's webhooks are, retried
  with back-off and dead-lettered after the last attempt; PULL subscriptions hand out the
  oldest unacknowledged event until it is acknowledged.
- subscriptions.py: creating, changing and ending subscriptions, with the grant of the
  event type and of the purpose checked as for a call.

Every delivery (a push attempt, a pull) is an audit record about each of the event's
subjects, cut to the client's field grant for the service.
"""
