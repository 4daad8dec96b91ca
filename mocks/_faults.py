"""The former name of `mocks.faults` (the fault switch is public now): kept so that code
written against it still imports."""

from mocks.faults import *  # noqa: F403
from mocks.faults import __all__  # noqa: F401
