"""The app's backend as production runs it, in a process group the soak can SIGKILL and restart.

``reflex run --env prod --backend-only`` serves the websocket, the REST API and the app's
lifespan (which resumes local jobs and settles Trigger.dev jobs on start) on one loopback
port; the soak's page clients speak Reflex's websocket protocol, so no frontend is built.
It is tests/support/prod_app.py's ``ProdApp`` in that mode: ``kill()`` SIGKILLs the whole group (the
reflex CLI and the granian worker: nothing runs its shutdown), ``start()`` starts it again on
the same port with the same environment, and every restart appends to the one log file, which
the soak scans for secrets.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.prod_app import ProdApp


@dataclass
class Backend(ProdApp):
    ready_path: str | None = None
    backend_only: bool = True
    start_timeout: float = 120.0
    poll_seconds: float = 0.1
    """A restart's time is part of the soak's figures: notice it within a tenth of a second."""
