"""The app's secret key: encrypts the secrets users enter (column credentials) at rest.

Values are encrypted with ``cryptography``'s Fernet (AES-128-CBC with an HMAC-SHA256 tag) through
a ``MultiFernet``, so the key can be rotated. The key comes from ``APP_SECRET_KEY``: one or more
Fernet keys, comma-separated, the newest first. With no ``APP_SECRET_KEY`` the app generates a key
into its data folder (next to the SQLite file, ``.data/secret.key`` by default; mode 0600) and
logs once that it did. Keep that file, or set ``APP_SECRET_KEY`` to its content: without the key,
the saved credentials cannot be read back. Every process that runs jobs needs the same key: the
web app, and the worker on Trigger.dev (set ``APP_SECRET_KEY`` in the Trigger.dev environment).

Rotating the key:

1. Generate a new key: ``python -m enrichment_app.keys generate``.
2. Put it first, keeping the old one after it: ``APP_SECRET_KEY=<new>,<old>``; restart. New
   secrets are encrypted with the new key; old ones still decrypt with the old key.
3. Re-encrypt every stored secret with the new key: ``python -m enrichment_app.keys rotate``.
4. Drop the old key: ``APP_SECRET_KEY=<new>``; restart.

A key that is lost or changed without these steps makes the saved credentials unreadable; the
app then says so in the cells of the affected columns instead of crashing ("enter the
credentials again").
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from enrichment_app.errors import ConfigError, EnrichmentAppError

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"
SETTING = "APP_SECRET_KEY"


class SecretKeyError(EnrichmentAppError):
    """A stored secret cannot be decrypted with the configured key(s)."""


def parse_keys(text: str) -> list[bytes]:
    """The Fernet keys in ``APP_SECRET_KEY`` (comma-separated, newest first).

    ``ConfigError`` names the bad entry without printing it, since it is meant to be a secret.
    """
    keys = [part.strip() for part in text.split(",") if part.strip()]
    if not keys:
        raise ConfigError(f"{SETTING} is set but holds no key")
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{SETTING}: key {number} of {len(keys)} is not a Fernet key (44 characters of "
                "URL-safe base64 for 32 bytes); make one with "
                "`python -m enrichment_app.keys generate`"
            ) from None
    return [key.encode("ascii") for key in keys]


DIGEST_INFO = b"enrichment_app token digest v1"
"""HKDF's ``info``: the digest keys are derived from, and independent of, the Fernet keys."""


def _digest_key(fernet_key: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DIGEST_INFO)
    return hkdf.derive(fernet_key)


@dataclass(frozen=True)
class SecretBox:
    """Encrypts and decrypts the secrets the app stores. Build with ``load_secret_box``.

    It also digests the tokens the app hands out (sessions, API tokens, invitation codes):
    HMAC-SHA256 under a key derived from each ``APP_SECRET_KEY`` key (``digests``). A token is
    256 random bits, so a fast hash is enough to make the stored digest useless to whoever reads
    the database (argon2's slowness protects guessable passwords, and would only slow down every
    request here); the key adds that a stolen database alone cannot even check a guess.
    """

    _fernet: MultiFernet
    key_count: int
    _digest_keys: tuple[bytes, ...] = ()

    @classmethod
    def from_keys(cls, keys: list[bytes]) -> SecretBox:
        return cls(
            MultiFernet([Fernet(key) for key in keys]),
            len(keys),
            tuple(_digest_key(key) for key in keys),
        )

    def digests(self, value: str) -> list[str]:
        """``value``'s digest under each key, the newest key's first (hex HMAC-SHA256).

        Store the first; look a value up by all of them, so that tokens issued before a key
        rotation still work while the old key is listed (and can be re-digested on use).
        """
        found = []
        for key in self._digest_keys:
            mac = hmac.HMAC(key, hashes.SHA256())
            mac.update(value.encode("utf-8"))
            found.append(mac.finalize().hex())
        return found

    def digest(self, value: str) -> str:
        """``value``'s digest under the newest key: what is stored."""
        return self.digests(value)[0]

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretKeyError(
                f"A saved credential cannot be decrypted: {SETTING} changed since it was saved"
                " (or the data folder's secret.key was replaced). Restore the old key, or enter"
                " the credential again in a new column."
            ) from exc

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted with the newest key (``SecretKeyError`` if no key opens it)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretKeyError(
                f"A saved credential cannot be re-encrypted: none of the keys in {SETTING} opens it"
            ) from exc


_lock = threading.Lock()
_cache: dict[tuple[str, str], SecretBox] = {}


def load_secret_box(configured: str | None, key_file: Path) -> SecretBox:
    """The box for ``APP_SECRET_KEY`` (``configured``), else for the key in ``key_file``,
    generating that file when it does not exist. Cached per process, so the file is generated
    and announced once."""
    cache_key = (configured or "", str(key_file))
    with _lock:
        box = _cache.get(cache_key)
        if box is None:
            keys = parse_keys(configured) if configured else [_read_or_create(key_file)]
            box = _cache[cache_key] = SecretBox.from_keys(keys)
        return box


def _read_or_create(path: Path) -> bytes:
    """The key in ``path``; a new one put there (mode 0600) if there is none.

    The new key is written to a private temporary file first and then linked into place, which
    fails if the file appeared meanwhile: processes starting together all end up with one key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        key = Fernet.generate_key()
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key + b"\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        else:
            _announce(path)
        finally:
            temporary.unlink()
    text = path.read_text(encoding="ascii").strip()
    try:
        return parse_keys(text)[0]
    except ConfigError:
        raise ConfigError(
            f"{path} does not hold a valid secret key: restore it from a backup, or set "
            f"{SETTING}. (Moving the file away makes the app generate a new key, and the "
            "credentials saved with the old one are then lost.)"
        ) from None


def _announce(path: Path) -> None:
    logger.warning(
        "%s is not set, so a new secret key was generated in %s. It encrypts the credentials"
        " saved in column configs: keep that file, or set %s to its content (and set it for"
        " the Trigger.dev worker too).",
        SETTING,
        path,
        SETTING,
    )


def forget_cached_boxes() -> None:
    """For tests that change the key within one process."""
    with _lock:
        _cache.clear()
