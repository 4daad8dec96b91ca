"""Columns sealed at rest: what they hold is encrypted before it is written and opened when
it is read, so a database dump, a backup or a replica does not hold it in clear.

The hub keeps two such things for a while: a judicial request's result (`jobs.result`: the
certificate, its holder's name and ID, the PDF) and the webhooks queued for clients
(`webhook_deliveries.payload`: the same, cut to the client's grant). Both are sealed with
Fernet (the `cryptography` package: AES-128-CBC with an HMAC-SHA256, a timestamped token)
under the data key:

- `HUB_DATA_KEY`: one or more Fernet keys (`Fernet.generate_key()`, comma-separated), from
  the environment or the secrets folder (`$HUB_SECRETS_DIR/HUB_DATA_KEY`). The first seals;
  every one opens, so a key is rotated by putting the new one first and keeping the old
  one until the rows sealed with it are gone.
- unset, a key derived from `HUB_SECRET_KEY` (HKDF-SHA256, its own label), so a laptop
  needs nothing; a production deployment sets its own, kept apart from the database.

The sealing is a SQLAlchemy TypeDecorator, so no code that reads or writes these columns
knows of it; the sealer is bound to the engine (`install_sealer`), so each app has its own
key. The database column types do not change (a JSON object `{"sealed": token}`, a token as
text): no migration, and rows written before sealing are still read, and sealed the next
time they are written. A row the key cannot open raises SealBroken (its data is never
guessed at).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import JSON, Text
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.types import TypeDecorator

__all__ = ["SealBroken", "SealedJSON", "SealedText", "Sealer", "install_sealer", "sealer_for"]

_ATTRIBUTE = "hub_sealer"
_TOKEN_START = "gAAAAA"  # every Fernet token: version byte 0x80, base64


class SealBroken(Exception):
    """A sealed value the data key cannot open (another key, or altered)."""


class Sealer:
    """Seals and opens text with the data key(s)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("a sealer needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def derived(cls, secret: bytes) -> Sealer:
        """A sealer under a key derived from the server secret (HKDF, its own label)."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"hub data at rest")
        return cls([base64.urlsafe_b64encode(hkdf.derive(secret))])

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SealBroken("a sealed column does not open with the data key") from None


def sealer_for(data_key: str | None, secret: bytes) -> Sealer:
    """The sealer of HUB_DATA_KEY's keys, or of the key derived from the server secret.
    Raises ValueError for a key that is not a Fernet key (its text is never repeated)."""
    if not data_key:
        return Sealer.derived(secret)
    keys = [k.strip().encode() for k in data_key.split(",") if k.strip()]
    try:
        return Sealer(keys)
    except ValueError:
        raise ValueError(
            "HUB_DATA_KEY must be Fernet keys (Fernet.generate_key()), comma-separated"
        ) from None


def install_sealer(engine: Engine, sealer: Sealer) -> None:
    """Seal this engine's sealed columns with `sealer` (each engine has its own dialect)."""
    setattr(engine.dialect, _ATTRIBUTE, sealer)


def _sealer(dialect: Dialect) -> Sealer:
    sealer = getattr(dialect, _ATTRIBUTE, None)
    if sealer is None:
        raise SealBroken("this engine has no data key: call hub.core.sealed.install_sealer")
    return sealer  # type: ignore[no-any-return]


class SealedJSON(TypeDecorator[Any]):
    """A JSON column whose value is stored as `{"sealed": token}`."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return {"sealed": _sealer(dialect).seal(orjson.dumps(value).decode())}

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, dict) and set(value) == {"sealed"}:
            return orjson.loads(_sealer(dialect).open(value["sealed"]))
        return value  # written before sealing


class SealedText(TypeDecorator[str]):
    """A text column whose value is stored as a token."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _sealer(dialect).seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not value.startswith(_TOKEN_START):
            return value  # written before sealing (JSON starts with `{`)
        return _sealer(dialect).open(value)
