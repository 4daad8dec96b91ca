"""MkDocs hooks: the reference pages generated from the code, so that they cannot drift.

- `<!-- generated: settings -->` becomes the hub's settings, grouped by component, from
  pydantic-settings' own metadata (`Settings.model_fields`: name, type, default,
  description), then each installed adapter's `HUB_<NAME>_*` settings from its `Config`.
- `<!-- generated: cli -->` becomes every `hub` command with its arguments and options,
  from click's own metadata (`click.Context.to_info_dict`).
- `<!-- generated: routes -->` becomes the table of the API's routes from the OpenAPI
  document the app itself serves, and the build adds that document as
  `reference/openapi.json`.

tests/test_docs.py checks what these produce; `mkdocs build --strict` runs in .ci/run.
"""

from __future__ import annotations

import json
import tempfile
import types
import typing
from collections.abc import Iterable
from typing import Any

import click
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# Components of the hub's settings, by name prefix (the first that matches wins). The
# environment variables keep their flat HUB_* names: nested models would rename every
# variable operators already set.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Deployment",
        (
            "environment",
            "database_url",
            "auto_migrate",
            "enabled_adapters",
            "adapters",
            "background_tasks",
            "worker_interval_s",
            "shutdown_grace_s",
            "direct_path",
            "health_cache_s",
            "log_format",
        ),
    ),
    ("Secrets", ("secret_key",)),
    ("Redis", ("redis_",)),
    ("Clients, keys and tokens", ("client_cache_ttl_s", "oauth_", "rate_limit_")),
    ("Request limits and browsers", ("max_", "cors_")),
    ("Upstream calls", ("upstream_", "http_transport", "retry_", "profile_timeout_s")),
    ("Circuit breaker", ("circuit_",)),
    ("Audit trail", ("audit_",)),
    ("Asynchronous jobs", ("job_",)),
    ("Payments", ("payment_",)),
    ("Webhooks and callbacks", ("webhook_", "https_callbacks_only", "public_callbacks_only")),
    ("Console", ("console_",)),
    ("Events", ("event_", "events_", "subscription_", "govstack_")),
    ("Metrics", ("metrics_",)),
)
OTHER = "Other"


def group_of(name: str) -> str:
    for title, prefixes in GROUPS:
        if any(name == p or (p.endswith("_") and name.startswith(p)) for p in prefixes):
            return title
    return OTHER


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if hasattr(value, "get_secret_value"):
        return "a development value (refused in production)"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def _type_text(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" (optional)" if type(None) in args else "")
    if origin in (list, dict):
        return "JSON " + ("list" if origin is list else "object")
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _type(info: FieldInfo) -> str:
    if info.annotation is SecretStr:
        return "secret"
    return _type_text(info.annotation)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def settings_rows(model: Any, prefix: str) -> list[tuple[str, str, str, str, str]]:
    """(field, variable, type, default, description) for every field of a settings class."""
    rows = []
    for name, info in model.model_fields.items():
        rows.append(
            (
                name,
                f"{prefix}{name}".upper(),
                _type(info),
                _default(info),
                _cell(info.description or ""),
            )
        )
    return rows


def _table(rows: Iterable[tuple[str, str, str, str, str]]) -> list[str]:
    lines = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for _, variable, kind, default, description in rows:
        lines.append(f"| `{variable}` | {kind} | {default} | {description} |")
    return lines


def settings_markdown() -> str:
    from hub.core.config import Settings
    from hub.core.registry import discover

    grouped: dict[str, list[tuple[str, str, str, str, str]]] = {}
    for row in settings_rows(Settings, "HUB_"):
        grouped.setdefault(group_of(row[0]), []).append(row)
    out: list[str] = []
    order = [title for title, _ in GROUPS] + [OTHER]
    for title in order:
        if title in grouped:
            out += [f"## {title}", "", *_table(grouped[title]), ""]
    out += ["## Adapters", ""]
    out += [
        "Each adapter reads its own `HUB_<NAME>_*` variables. The defaults match the mocks, "
        "so `hub up` needs none; secrets default to the mocks' well-known values, which a "
        "production hub refuses.",
        "",
    ]
    for name, cls in sorted(discover().items()):
        prefix = str(cls.Config.model_config.get("env_prefix", ""))
        out += [f"### {name}", "", *_table(settings_rows(cls.Config, prefix)), ""]
    return "\n".join(out)


def _param_line(param: dict[str, Any]) -> str:
    if param["param_type_name"] == "argument":
        name = param["name"].upper()
        many = "…" if param.get("nargs", 1) == -1 else ""
        return f"- `{name}{many}` (argument{'' if param.get('required') else ', optional'})"
    opts = ", ".join(f"`{o}`" for o in [*param["opts"], *param.get("secondary_opts", [])])
    text = f"- {opts}"
    help_text = _cell(param.get("help") or "")
    if help_text:
        text += f": {help_text}"
    default = param.get("default")
    if default not in (None, False, (), []) and not param.get("is_flag"):
        text += f" (default `{default}`)"
    return text


def _commands(info: dict[str, Any], path: str, depth: int) -> list[str]:
    out = [f"{'#' * depth} `{path}`", ""]
    if info.get("help"):
        out += [" ".join(info["help"].split("\b")).strip(), ""]
    params = [p for p in info.get("params", []) if p["name"] not in ("help", "version")]
    if params:
        out += [_param_line(p) for p in params] + [""]
    for name, sub in sorted(info.get("commands", {}).items()):
        out += _commands(sub, f"{path} {name}", min(depth + 1, 4))
    return out


def cli_markdown() -> str:
    from hub.cli import main

    with click.Context(main, info_name="hub") as ctx:
        info = ctx.to_info_dict()["command"]
    return "\n".join(_commands(info, "hub", 2))


def openapi_document() -> dict[str, Any]:
    from hub.app import create_app
    from hub.core.config import Settings

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{folder}/docs.db",
            audit_archive_dir=f"{folder}/archive",
            background_tasks=False,
        )
        return create_app(settings).openapi()


def routes_markdown(document: dict[str, Any]) -> str:
    lines = ["| method | path | what |", "|---|---|---|"]
    for path, item in sorted(document.get("paths", {}).items()):
        for method, operation in item.items():
            if method.startswith("x-") or not isinstance(operation, dict):
                continue
            summary = _cell(operation.get("summary") or "")
            lines.append(f"| {method.upper()} | `{path}` | {summary} |")
    return "\n".join(lines)


_openapi: dict[str, Any] | None = None


def _document() -> dict[str, Any]:
    global _openapi
    if _openapi is None:
        _openapi = openapi_document()
    return _openapi


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- generated: settings -->" in markdown:
        markdown = markdown.replace("<!-- generated: settings -->", settings_markdown())
    if "<!-- generated: cli -->" in markdown:
        markdown = markdown.replace("<!-- generated: cli -->", cli_markdown())
    if "<!-- generated: routes -->" in markdown:
        markdown = markdown.replace("<!-- generated: routes -->", routes_markdown(_document()))
    return markdown


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    content = json.dumps(_document(), ensure_ascii=False, indent=1)
    files.append(File.generated(config, "reference/openapi.json", content=content))
    return files
