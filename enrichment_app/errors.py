"""The exception tree. Everything the app raises on purpose descends from ``EnrichmentAppError``.

    EnrichmentAppError
    ├── ConfigError            a setting is missing or wrong
    ├── NotFoundError          a table, column, row or job id that does not exist
    ├── InvalidInputError      user input we refuse, with a message fit to show the user
    │   ├── CellsBusyError     the cells are already queued or running
    │   ├── InUseError         a table or column that something else still needs
    │   ├── QuotaExceededError a limit on use is reached (cells per day, a rate)
    │   ├── CsvImportError     a CSV file that cannot be imported (nothing is half-imported)
    │   ├── EnricherConfigError  an unknown enricher or a config it refuses
    │   └── TooManyAttemptsError  sign-ins refused for a while after repeated failures
    ├── AuthError              who is asking may not do what they ask (services/access.py)
    │   ├── SignInRequired     no signed-in user or valid token (the page: sign in; the API: 401)
    │   └── AccessDenied       signed in, but the role is too low for the action (403)
    ├── CanceledByUserError    a long import or export the user stopped (nothing was stored)
    ├── IdempotencyClaimLostError  a request's Idempotency-Key claim was taken over by a retry
    ├── EnrichError            one cell's enrichment failed; the message is stored on the cell
    │   └── NotConfiguredError the enricher needs a setting (an API key, say) that is absent
    └── TriggerApiError        a Trigger.dev API call failed (see ``enrichment_app.trigger``)

I/O errors from libraries (httpx, SQLAlchemy) are wrapped at the edge with ``raise … from exc``.
"""

from __future__ import annotations


class EnrichmentAppError(Exception):
    """Root of every error the app raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(EnrichmentAppError):
    """A setting is missing or invalid."""


class NotFoundError(EnrichmentAppError):
    """The requested object does not exist."""


class InvalidInputError(EnrichmentAppError):
    """Input from a user or API client that we refuse; the message is shown to them."""


class CellsBusyError(InvalidInputError):
    """The cells are already queued or running (not the Trigger.dev API's ``ConflictError``)."""


class InUseError(InvalidInputError):
    """The table or column is still needed: a job is running on it, or a column refers to it."""


class QuotaExceededError(InvalidInputError):
    """A limit on use is reached; ``retry_after`` says in how many seconds it frees up."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CsvImportError(InvalidInputError):
    """A CSV upload that cannot be imported; nothing from it is stored."""


class EnricherConfigError(InvalidInputError):
    """An unknown enricher name, or a config the enricher refuses."""


class TooManyAttemptsError(InvalidInputError):
    """Too many failed sign-ins for this email or address; ``retry_after`` seconds to wait."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(EnrichmentAppError):
    """The access rule refused: the message says why, without revealing what is not yours."""


class SignInRequired(AuthError):
    """No signed-in user (or API token): the session is missing, expired or revoked."""


class AccessDenied(AuthError):
    """A member whose role does not allow the action (a viewer pressing Run, say)."""


class CanceledByUserError(EnrichmentAppError):
    """The user stopped a long import or export; its transaction rolled back."""


class IdempotencyClaimLostError(EnrichmentAppError):
    """A request stalled so long that a retry with its ``Idempotency-Key`` took the key over;
    the stalled request must create nothing (its unit of work rolls back)."""


class EnrichError(EnrichmentAppError):
    """Enriching one cell failed; the message is recorded on the cell and shown to the user."""


class NotConfiguredError(EnrichError):
    """The enricher needs a setting (an API key, a base URL) that is not configured."""
