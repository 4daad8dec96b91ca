"""AdapterConformance: the battery an adapter's tests subclass (see the package docstring)."""

from __future__ import annotations

from typing import Any

from hub.testing.fault_checks import FaultChecks
from hub.testing.pipeline_checks import PipelineChecks


# pytest collects inherited tests base first (reverse MRO): the pipeline's, then the faults'.
class AdapterConformance(FaultChecks, PipelineChecks):
    """The conformance battery of one adapter. Subclass it in a test module (name the
    subclass `Test…`) and declare:

    - `adapter`: the Adapter subclass.
    - `mock`: a zero-argument callable returning the mock's ASGI app (a fresh one per test;
      `staticmethod(...)` or a lambda). Its lifespan is run around each test.
    - `samples`: operation name -> a valid input (or a function of the ConformanceHub
      returning one) that upstream answers successfully.
    - `unknown`: operation name -> an input upstream does not know (answered NOT_FOUND).
    - `exempt`: operation name -> why it has no sample (operations served by their own
      route need none).
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
