"""Asynchronous upstream requests as a capability, for every AsyncAdapter (a criminal-record
certificate, a land survey…): the hub keeps each request as a job until it ends.

An async adapter offers two operations, `submit` (not idempotent; returns
`{"reference", "status"}`) and `status` (`{"reference"}` in, the current state out, with
`status` one of its final statuses when done), and `parse_push(body, headers) -> state`,
which verifies and reads upstream's pushed result (hub.adapter.AsyncAdapter).

The hub's part, the same for every such adapter:

- submit (service.py): a `submitting` job row is written *before* the upstream call, so a
  hub that cannot write never asks upstream; on refusal the row is removed, on success it
  takes upstream's reference. The caller gets 202 and the job id.
- upstream's push updates the job (signature checked by the adapter; a replayed push
  changes nothing);
- polling as the fallback (polling.py): any hub process leases due jobs and asks
  `status`, backing off exponentially; a restart loses nothing because every unfinished
  job is a row;
- on the final state (state.py) a signed webhook goes to the client's callback URL, from
  the outbox written in the same transaction.

Upstream's answers are stored whole; the job's view (views.py), answered by the routes and
sent in the webhook, is cut to the client's field grant (hub.security.fields).
"""
