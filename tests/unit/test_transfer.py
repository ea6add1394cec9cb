"""Keeping an upload (``Spool``) and counting and stopping long work (``Progress``)."""

from __future__ import annotations

import pytest

from enrichment_app.errors import CanceledByUserError
from enrichment_app.services.transfer import Progress, Spool


def test_a_spool_gives_back_what_it_kept_from_memory_and_from_disk() -> None:
    spool = Spool(max_bytes=10 * Spool.MEMORY_BYTES)
    part = bytes(range(256)) * 4096  # 1 MiB: the second one rolls the spool over to disk
    for _ in range(3):
        assert spool.write(part)
    assert b"".join(spool.chunks(size=100_000)) == part * 3
    assert b"".join(spool.chunks()) == part * 3, "read again from the start"
    spool.close()


def test_a_spool_keeps_nothing_past_its_cap_and_says_so() -> None:
    spool = Spool(max_bytes=10)
    assert spool.write(b"0123456789") and not spool.too_large
    assert not spool.write(b"x")
    assert spool.too_large and spool.size == 11
    assert b"".join(spool.chunks()) == b"0123456789"
    spool.close()


def test_progress_counts_until_canceled() -> None:
    progress = Progress()
    items = progress.count(range(10))
    assert [next(items), next(items)] == [0, 1]
    progress.cancel()
    with pytest.raises(CanceledByUserError, match="nothing was stored"):
        next(items)
    assert progress.rows == 2 and progress.canceled
