"""What no error may show its caller: the input's values, upstream's text, the adapter's
secrets. The battery collects those strings and searches each error's problem JSON."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from lxml import etree
from pydantic import SecretStr

from hub.errors import HubError
from hub.soap import safe_parser
from hub.testing.client import ConformanceHub

#: Shorter strings (codes like "01", "VN") are not searched for in errors.
_MIN_LEAK_LENGTH = 4


def _strings(value: Any) -> set[str]:
    """Every string in a JSON-like value (keys excluded), stripped, long enough to search."""
    found: set[str] = set()
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= _MIN_LEAK_LENGTH:
            found.add(text)
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found |= _strings(item)
    return found


def _answer_strings(body: bytes) -> set[str]:
    """The values in an upstream answer (JSON strings, XML texts and attributes)."""
    with contextlib.suppress(ValueError):
        return _strings(json.loads(body))
    with contextlib.suppress(etree.LxmlError, ValueError):
        root = etree.fromstring(body, safe_parser())
        texts = list(root.itertext())
        texts += [value for element in root.iter() for value in element.attrib.values()]
        return _strings(texts)
    return set()


def _forbidden(kit: ConformanceHub, *values: Any) -> set[str]:
    """Strings no error may carry: the inputs' values and the adapter's secrets."""
    found = _strings(list(values))
    config = kit.adapter.config
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, SecretStr):
            found |= _strings(value.get_secret_value())
    return found


def _assert_clean(what: str, exc: HubError, forbidden: set[str]) -> None:
    """No forbidden string in what the caller sees of `exc` (its problem JSON)."""
    problem = exc.problem(None)
    shown = json.dumps({k: v for k, v in problem.items() if k != "request_id"}, ensure_ascii=False)
    shown += "\n" + str(exc)
    fixed = f"{problem['type']} {exc.title} {exc.code}"  # the class's own words
    leaked = sorted(s for s in forbidden if s in shown and s not in fixed)
    assert not leaked, f"{what}: the error shown to the caller carries {leaked!r}: {shown}"
