"""What the page, the REST API and the runners do with the database, in plain Python.

Every function takes the session first and never commits: the caller owns the unit of work
(see ``enrichment_app.db.sessions``), so it can group several calls into one transaction.
Functions that take a session factory instead (``enrichment``, ``idempotency.claim``)
orchestrate several units of work and end each one themselves.
"""
