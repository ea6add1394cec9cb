"""Credentials in column configs: sealed at rest, masked for people, opened for enrichers only.

Each enricher says where its config holds credentials (``Enricher.secret_paths``). In the
database such a value is stored sealed, as ``{"$secret": "<Fernet token>"}``
(enrichment_app/keyring.py). The page and the API show it as ``•••`` (``masked_config``); a
config sent back with ``•••`` in that place keeps the saved value (``seal_config(previous=…)``),
so editing a column never needs the secret retyped, and never shows it. Only the job processor
opens a config (``open_config``), just before an enricher runs, and scrubs the column's secret
values from whatever error text comes back (``known_secrets`` with ``redact.scrub``).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from enrichment_app.db.models import TableColumn
from enrichment_app.enrichers import get_enricher
from enrichment_app.errors import EnricherConfigError, EnrichmentAppError
from enrichment_app.keyring import SecretBox, load_secret_box
from enrichment_app.redact import scrub
from enrichment_app.settings import Settings

SEALED = "$secret"
MASK = "•••"

Path = tuple[str, ...]


def secret_box(settings: Settings) -> SecretBox:
    """The process's box for ``settings`` (``APP_SECRET_KEY``, else the data folder's key)."""
    configured = settings.app_secret_key.get_secret_value() if settings.app_secret_key else None
    return load_secret_box(configured, settings.secret_key_file)


def is_sealed(value: object) -> bool:
    return isinstance(value, Mapping) and set(value) == {SEALED} and isinstance(value[SEALED], str)


def secret_paths(enricher: str | None, config: Mapping[str, Any]) -> list[Path]:
    """Where ``config`` holds credentials, for the named enricher ([] when it is unknown)."""
    try:
        found = get_enricher(enricher or "")
    except EnrichmentAppError:
        return []
    return found.secret_paths(config)


def _get(config: Mapping[str, Any], path: Path) -> Any:
    value: Any = config
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _set(config: dict[str, Any], path: Path, value: Any) -> None:
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def seal_config(
    config: Mapping[str, Any],
    paths: Sequence[Path],
    box: SecretBox,
    *,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A copy of the validated ``config`` with the values at ``paths`` sealed.

    ``•••`` at a path keeps the sealed value ``previous`` has there; with none, it is refused,
    since it would otherwise be saved as the credential itself.
    """
    sealed = copy.deepcopy(dict(config))
    for path in paths:
        value = _get(sealed, path)
        if value == MASK:
            kept = _get(previous or {}, path)
            if not is_sealed(kept):
                where = " → ".join(path)
                raise EnricherConfigError(
                    f"Enter the value for {where}: ••• stands for a saved credential, and none "
                    "is saved there."
                )
            _set(sealed, path, dict(kept))
        elif isinstance(value, str):
            _set(sealed, path, {SEALED: box.encrypt(value)})
    return sealed


def _walk(value: Any, change: Any) -> Any:
    if is_sealed(value):
        return change(value[SEALED])
    if isinstance(value, Mapping):
        return {key: _walk(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, change) for item in value]
    return value


def masked_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config to show on the page or in the API: every saved credential as ``•••``."""
    masked: dict[str, Any] = _walk(config, lambda _token: MASK)
    return masked


def open_config(config: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """The config with its credentials decrypted, for an enricher; ``SecretKeyError`` when the
    key that sealed them is gone."""
    opened: dict[str, Any] = _walk(config, box.decrypt)
    return opened


def known_secrets(config: Mapping[str, Any], paths: Sequence[Path]) -> list[str]:
    """The credential values of an opened config, as they may appear in error text: each value,
    and for a username/password pair also the Basic credentials they make."""
    values = [v for path in paths if isinstance(v := _get(config, path), str) and v]
    auth = config.get("auth")
    if isinstance(auth, Mapping) and auth.get("type") == "basic":
        pair = f"{auth.get('username', '')}:{auth.get('password', '')}"
        values.append(base64.b64encode(pair.encode("utf-8")).decode("ascii"))
    return values


def _enrichment_columns(session: Session) -> Iterator[TableColumn]:
    query = select(TableColumn).where(col(TableColumn.enricher).is_not(None))
    yield from session.exec(query).all()


def seal_plaintext_credentials(*, session: Session, box: SecretBox) -> int:
    """Seal credentials that an older version stored in plain text; returns how many columns
    changed. Idempotent; the caller commits (all columns or none)."""
    changed = 0
    for column in _enrichment_columns(session):
        paths = secret_paths(column.enricher, masked_config(column.config))
        if any(isinstance(_get(column.config, path), str) for path in paths):
            column.config = seal_config(column.config, paths, box, previous=column.config)
            session.add(column)
            changed += 1
    return changed


def reseal_credentials(*, session: Session, box: SecretBox) -> int:
    """Re-encrypt every saved credential with the newest key (key rotation, step 3); returns
    how many columns hold credentials. The caller commits."""
    count = 0
    for column in _enrichment_columns(session):
        resealed = _walk(column.config, lambda token: {SEALED: box.rotate(token)})
        if resealed != column.config:
            column.config = resealed
            session.add(column)
            count += 1
    return count


def settings_secrets(settings: Settings) -> list[str]:
    """The provider keys in the settings, which no cell error may carry either. (The REST API's
    key is read by api/ alone, and no enricher ever sees it.)"""
    values = (settings.llm_api_key, settings.trigger_secret_key)
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


@dataclass(frozen=True, slots=True)
class OpenedConfig:
    """A column's config ready for its enricher, or why it cannot be (``error``), and the
    values to scrub from the enricher's error text."""

    config: dict[str, Any] | None
    error: str | None
    secrets: tuple[str, ...]

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)


class ConfigOpener:
    """Opens the configs of a job's columns, once per column, for the job processor."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._opened: dict[int | None, OpenedConfig] = {}
        self._always = tuple(settings_secrets(settings))

    def open(self, column: TableColumn) -> OpenedConfig:
        opened = self._opened.get(column.id)
        if opened is None:
            opened = self._opened[column.id] = self._open(column)
        return opened

    def _open(self, column: TableColumn) -> OpenedConfig:
        try:
            box = secret_box(self._settings) if _has_sealed(column.config) else None
            config = open_config(column.config, box) if box is not None else dict(column.config)
        except EnrichmentAppError as exc:  # the key changed or the key file is unreadable
            return OpenedConfig(None, f"Column '{column.name}': {exc}", self._always)
        paths = secret_paths(column.enricher, masked_config(column.config))
        return OpenedConfig(config, None, (*known_secrets(config, paths), *self._always))


def _has_sealed(value: Any) -> bool:
    if is_sealed(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_sealed(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_sealed(item) for item in value)
    return False


def hide_typed_secrets(
    config: Mapping[str, Any], paths: Sequence[Path], kept: Mapping[Path, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[Path, str]]:
    """For a form that was submitted: ``(config to save, config to show, secrets to keep)``.

    The config to save has ``•••`` replaced by the secrets kept from an earlier submission of
    the same form; the one to show has every secret replaced by ``•••``, so the typed value
    leaves the form (and its public state) as soon as it is submitted.
    """
    to_save = copy.deepcopy(dict(config))
    to_show = copy.deepcopy(dict(config))
    keep: dict[Path, str] = {}
    for path in paths:
        value = _get(to_save, path)
        if value == MASK and path in kept:
            value = kept[path]
            _set(to_save, path, value)
        if isinstance(value, str) and value != MASK:
            keep[path] = value
            _set(to_show, path, MASK)
    return to_save, to_show, keep
