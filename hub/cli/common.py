"""What several `hub` commands share: their logging and the hub's database."""

from __future__ import annotations

import contextlib
import logging.config
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hub.core.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def configure_logging(level: str, settings: Settings) -> dict[str, Any]:
    """Log as HUB_LOG_FORMAT says (hub/core/logs.py); returns the configuration, for uvicorn to
    apply to its own loggers too, in every worker process."""
    from hub.core.logs import logging_config

    config = logging_config(level, settings.log_format_used)
    logging.config.dictConfig(config)
    return config


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Engine]:
    """The hub's database, its schema created, for a CLI command."""
    from hub.core.db import create_schema, make_engine
    from hub.core.sealed import install_sealer

    engine = make_engine(settings.database_url)
    install_sealer(engine, settings.sealer())
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()
