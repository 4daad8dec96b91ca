"""The named transforms of a mapping field (`date:yyyyMMdd`, `code:gender`, `int`, …) and
`MappingValueError`, raised when an upstream value does not fit its rule.

Each transform compiles once, at start-up, to a plain function of one value: it runs for
every mapped field of every upstream answer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from typing import Any

from hub.provinces import province_name


class MappingValueError(ValueError):
    """An upstream value could not be mapped (the core answers 502 UPSTREAM_BAD_RESPONSE).

    The message names the canonical field and the rule, never the value itself.
    """


Transform = Callable[[Any], Any]

_JAVA_DATE = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "hh": "%H", "mm": "%M", "ss": "%S"}


_UTC_OFFSET = re.compile(r"([+-])(\d\d):(\d\d)")


def _date_transform(spec: str) -> Transform:
    """`date:PATTERN`, or `date:PATTERN@+07:00` for a local date-time at that UTC offset
    (the answer is then timezone-aware; upstreams send Vietnam time with no offset)."""
    pattern, _, offset = spec.partition("@")
    fmt = re.sub("|".join(_JAVA_DATE), lambda m: _JAVA_DATE[m.group(0)], pattern)
    with_time = any(t in pattern for t in ("HH", "hh", "mm", "ss"))
    zone: dt.tzinfo | None = None
    if offset:
        match = _UTC_OFFSET.fullmatch(offset)
        if match is None or not with_time:
            raise ValueError(f"date:{spec}: an @offset is +HH:MM, after a pattern with a time")
        sign = -1 if match.group(1) == "-" else 1
        delta = dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        zone = dt.timezone(sign * delta)

    fixed = _fixed_width(pattern)

    def parse(value: Any) -> Any:
        text = str(value)
        try:
            if fixed is not None:  # strptime costs ~10x more than reading fixed digits
                match = fixed.fullmatch(text)
                if match is None:
                    raise ValueError(text)
                parts = [int(part) for part in match.groups()]
                parsed = dt.datetime(*parts)  # type: ignore[arg-type]  # 3 to 6 ints
            else:
                parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            raise MappingValueError(f"not a date in the form {pattern}") from None
        if not with_time:
            return parsed.date()
        return parsed if zone is None else parsed.replace(tzinfo=zone)

    return parse


#: Fixed-width fields of a date pattern, in datetime()'s argument order.
_FIXED_FIELDS = {"yyyy": 4, "MM": 2, "dd": 2, "HH": 2, "hh": 2, "mm": 2, "ss": 2}
_DATETIME_ORDER = ["yyyy", "MM", "dd", "HH", "mm", "ss"]


def _fixed_width(pattern: str) -> re.Pattern[str] | None:
    """A regex reading a pattern whose fields come in datetime()'s order (year, month, day,
    hour, minute, second, a prefix of them) at fixed width, with separators that are not
    letters: `yyyyMMdd`, `yyyy-MM-dd`, `yyyyMMddHHmmss` and the like. None for other
    patterns, such as `dd/MM/yyyy` or a quoted `'T'` (strptime reads those). Stricter than
    strptime, which also takes one-digit months and days."""
    tokens = re.split("(yyyy|MM|dd|HH|hh|mm|ss)", pattern)
    fields = [t.replace("hh", "HH") for t in tokens[1::2]]
    if fields != _DATETIME_ORDER[: len(fields)] or len(fields) < 3:
        return None
    if any(c.isalpha() for c in "".join(tokens[0::2])):
        return None
    regex = "".join(
        f"([0-9]{{{_FIXED_FIELDS[t]}}})" if i % 2 else re.escape(t) for i, t in enumerate(tokens)
    )
    return re.compile(regex)


def _bool_transform(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise MappingValueError("not a boolean")


def _int_transform(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MappingValueError("not an integer") from None


_SIMPLE_TRANSFORMS: dict[str, Transform] = {
    "bool": _bool_transform,
    "int": _int_transform,
    "str": str,
    "upper": lambda v: str(v).upper(),
    "lower": lambda v: str(v).lower(),
    "province_name": lambda v: province_name(str(v)),
}

#: Names of the built-in transforms, with an argument after `:` where they take one.
TRANSFORMS_HELP = {
    "bool": "true/false/1/0 -> boolean",
    "int": "text -> integer",
    "str": "any -> text",
    "upper": "upper-case",
    "lower": "lower-case",
    "province_name": "3-digit province code -> province name",
    "date:PATTERN[@+HH:MM]": "date text in a Java-style pattern (yyyyMMdd, yyyyMMddHHmmss) -> ISO "
    "date; @offset: a local time at that UTC offset",
    "code:LIST": "look the value up in the file's code list LIST ('*' key: fallback)",
}


def _code_transform(name: str, table: MappingABC[str, Any]) -> Transform:
    fallback_set = "*" in table

    def lookup(value: Any) -> Any:
        key = str(value)
        if key in table:
            return table[key]
        if fallback_set:
            return table["*"]
        raise MappingValueError(f"not a known code of list {name!r}")

    return lookup


def _compile_transform(name: str, codes: MappingABC[str, MappingABC[str, Any]]) -> Transform:
    kind, _, arg = name.partition(":")
    if kind in _SIMPLE_TRANSFORMS and not arg:
        return _SIMPLE_TRANSFORMS[kind]
    if kind == "date" and arg:
        return _date_transform(arg)
    if kind == "code" and arg:
        if arg not in codes:
            raise ValueError(f"unknown code list {arg!r}")
        return _code_transform(arg, codes[arg])
    raise ValueError(f"unknown transform {name!r} (known: {', '.join(TRANSFORMS_HELP)})")
