"""The secret key's command line: ``python -m enrichment_app.keys generate|rotate``.

``generate`` prints a new Fernet key for ``APP_SECRET_KEY``. ``rotate`` re-encrypts every saved
credential with the newest key in ``APP_SECRET_KEY`` (step 3 of the rotation in
enrichment_app/keyring.py), in one transaction, and prints how many columns it re-encrypted.
"""

from __future__ import annotations

import argparse
import sys

from cryptography.fernet import Fernet

from enrichment_app.db.engine import create_db_engine, session_factory
from enrichment_app.db.migrate import upgrade_database
from enrichment_app.errors import EnrichmentAppError
from enrichment_app.services.credentials import reseal_credentials, secret_box
from enrichment_app.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m enrichment_app.keys", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["generate", "rotate"])
    args = parser.parse_args(argv)
    if args.command == "generate":
        sys.stdout.write(Fernet.generate_key().decode("ascii") + "\n")
        return 0
    settings = get_settings()
    engine = create_db_engine(settings.database_url)
    try:
        upgrade_database(engine)
        with session_factory(engine)() as session:
            count = reseal_credentials(session=session, box=secret_box(settings))
            session.commit()
    except EnrichmentAppError as exc:
        sys.stderr.write(f"Nothing was changed: {exc}\n")
        return 1
    finally:
        engine.dispose()
    sys.stdout.write(f"Re-encrypted the credentials of {count} column(s) with the newest key.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
