"""The live loops' shared re-check: an allowed decision is reused for a moment by every tab of
the session, never a refusal, never past its time, and the memory stays bounded."""

from __future__ import annotations

from enrichment_app.services.access import Action, RecentlyAllowed


def test_an_allowed_decision_is_shared_for_its_time_and_no_longer() -> None:
    recent = RecentlyAllowed(seconds=1.0)
    key = RecentlyAllowed.key("token-a", Action.VIEW, {"table_id": 3})
    assert not recent.allowed(key, now=100.0)
    recent.remember(key, now=100.0)
    assert recent.allowed(RecentlyAllowed.key("token-a", Action.VIEW, {"table_id": 3}), 100.9)
    assert not recent.allowed(key, now=101.0)


def test_another_session_action_or_table_decides_afresh() -> None:
    recent = RecentlyAllowed(seconds=1.0)
    recent.remember(RecentlyAllowed.key("token-a", Action.VIEW, {"table_id": 3}), now=0.0)
    for other in (
        RecentlyAllowed.key("token-b", Action.VIEW, {"table_id": 3}),
        RecentlyAllowed.key(None, Action.VIEW, {"table_id": 3}),
        RecentlyAllowed.key("token-a", Action.RUN, {"table_id": 3}),
        RecentlyAllowed.key("token-a", Action.VIEW, {"table_id": 4}),
    ):
        assert not recent.allowed(other, now=0.5)


def test_the_token_is_kept_as_a_digest_and_the_memory_is_bounded() -> None:
    recent = RecentlyAllowed(seconds=1.0, most=100)
    secret = "enr_" + "s" * 40
    for n in range(1000):
        recent.remember(RecentlyAllowed.key(f"{secret}{n}", Action.VIEW, {"table_id": n}), 0.0)
        assert len(recent) <= 100
    assert all(secret not in repr(key) for key in recent._until)
