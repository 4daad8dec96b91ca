"""AdapterConformance: the battery an adapter's tests subclass (see the package docstring)."""

from __future__ import annotations

from typing import Any

from hub.testing.event_checks import EventChecks
from hub.testing.fault_checks import FaultChecks
from hub.testing.pipeline_checks import PipelineChecks


# pytest collects inherited tests base first (reverse MRO): the pipeline's, the faults', then
# the events'.
class AdapterConformance(EventChecks, FaultChecks, PipelineChecks):
    """The conformance battery of one adapter. Subclass it in a test module (name the
    subclass `Test…`) and declare:

    - `adapter`: the Adapter subclass.
    - `mock`: a zero-argument callable returning the mock's ASGI app (a fresh one per test;
      `staticmethod(...)` or a lambda). Its lifespan is run around each test.
    - `samples`: operation name -> a valid input (or a function of the ConformanceHub
      returning one) that upstream answers successfully.
    - `unknown`: operation name -> an input upstream does not know (answered NOT_FOUND).
    - `events`: event type name (the local one, `death-registered`) -> its sample, one for
      every event type the adapter declares (hub.events): for a type read from the change
      feed, a function of the ConformanceHub (sync or async) that makes one such event
      happen in the mock (`kit.mock_request("POST", "/_mock/events", json=...)`); for a
      type published on a push, the payload the capability publishes (a mapping, or a
      function returning one). Adapters with no event types leave it out.
    - `exempt`: operation name -> why it has no sample (operations served by their own
      route need none).
    - `expected`: operation name -> what its sample must answer: the output's JSON data, or
      some of its fields (each one given must be equal). Catches a mapping that fits the
      model but puts values in the wrong fields (two names swapped).
    - `upstream_answers`: what of upstream's answers the adapter's `upstream_schema` (a
      JSON Schema) describes: a function of (the httpx.Request, the decoded JSON answer)
      returning the part to validate, or None to leave that answer out. Default: the whole
      JSON body of every 2xx answer to a request `fault_paths` selects. While the samples
      run, each such answer of the mock is validated against the schema, so a mock that
      drifts from it (a number sent as a string, a field the schema does not have) fails.
    - `config`: the adapter's configuration overrides the mock needs (credentials);
      `base_url` defaults to a placeholder the transport ignores.
    - `fault_paths`: which upstream requests meet injected faults: None (every request), a
      list of URL path prefixes, or a predicate of the httpx.Request. Leave out auxiliary
      requests (a token endpoint) so a fault hits the operation's own step.
    - `retry_attempts`, `attempt_timeout_s`: the hub's retry attempts and the per-attempt
      timeout the timeout check uses.
    """

    __test__ = False  # this base is not a test; its subclasses are (see __init_subclass__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__test__ = True
