"""The pace at which a filtered or sorted tab reads its view again (pure)."""

from __future__ import annotations

from enrichment_app.state.table.pacing import VIEW_READ_SECONDS, ViewPace


def test_the_first_read_is_due_at_once_and_the_next_after_the_pace() -> None:
    pace = ViewPace()
    assert pace.due(0.0)
    pace.read(10.0)
    assert not pace.due(10.0 + VIEW_READ_SECONDS / 2)
    assert pace.due(10.0 + VIEW_READ_SECONDS)


def test_a_put_off_read_shortens_the_wait_to_when_it_falls_due() -> None:
    pace = ViewPace()
    pace.read(10.0)
    assert pace.wait(10.1, 5.0) == 5.0, "nothing owed: wait for news as long as usual"
    pace.owed = True
    assert abs(pace.wait(10.1, 5.0) - (VIEW_READ_SECONDS - 0.1)) < 1e-9
    assert pace.wait(10.0 + VIEW_READ_SECONDS + 1, 5.0) == 0.0, "overdue: read now"
    pace.read(12.0)
    assert not pace.owed


def test_owed_changes_are_read_when_due_and_settled_when_they_stop() -> None:
    pace = ViewPace()
    assert pace.owe(10.0), "the first change is read at once"
    assert not pace.owed
    assert not pace.owe(10.1), "the next one, within the pace, is put off"
    assert pace.owed
    assert not pace.settle(10.2), "not due yet"
    assert pace.settle(10.0 + VIEW_READ_SECONDS), "due: read, and nothing is owed"
    assert not pace.owed and pace.last == 10.0 + VIEW_READ_SECONDS
    assert not pace.settle(20.0), "nothing owed: nothing to read"
