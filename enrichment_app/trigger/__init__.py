"""A small, faithful Python client for Trigger.dev, wire-compatible with the official SDK 4.8.3.

Plain Python (no Reflex). Run updates arrive over the ElectricSQL shape protocol (HTTP
long-polling); realtime streams are server-sent events. See ``client.TriggerClient``.
"""

from __future__ import annotations

from enrichment_app.trigger.client import RunHandle, TriggerClient
from enrichment_app.trigger.errors import (
    ApiConnectionError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RealtimeUnavailableError,
    TriggerApiError,
    TriggerNotFoundError,
    UnprocessableEntityError,
)
from enrichment_app.trigger.runs import RealtimeRun, RunError

__all__ = [
    "ApiConnectionError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RealtimeRun",
    "RealtimeUnavailableError",
    "RunError",
    "RunHandle",
    "TriggerApiError",
    "TriggerClient",
    "TriggerNotFoundError",
    "UnprocessableEntityError",
]
