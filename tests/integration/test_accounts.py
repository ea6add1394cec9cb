"""Accounts, sessions, invitations, tokens and the access rule, on a real SQLite database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from enrichment_app.db.engine import SessionFactory
from enrichment_app.db.models import AuthSession, DataTable, LoginAttempt, User, Workspace
from enrichment_app.domain import utcnow
from enrichment_app.errors import (
    AccessDenied,
    InvalidInputError,
    NotFoundError,
    SignInRequired,
    TooManyAttemptsError,
)
from enrichment_app.keyring import SecretBox
from enrichment_app.services import accounts, api_tokens, sessions, workspaces
from enrichment_app.services.access import (
    MIN_ROLE,
    Action,
    Role,
    ServicePrincipal,
    TokenPrincipal,
    UserPrincipal,
    authorize,
)
from enrichment_app.services.sessions import SessionPolicy
from enrichment_app.services.tables import ColumnSpec, create_table
from tests.support.accounts import add_user

POLICY = SessionPolicy(idle=timedelta(hours=1), max_age=timedelta(days=2))
OLD_KEY = b"M8ZgyRzkxS2aJCKu7Ki3ZWBkaqGrmW7t-sE0y40nOCU="
NEW_KEY = b"MgxcUXHYHzvAKut4wZZiDGQfAc3mJ28OjxcGYAjOa9w="
BOX = SecretBox.from_keys([OLD_KEY])


@pytest.fixture
def session(open_session: SessionFactory) -> Session:
    with open_session() as session:
        return session


def table_in(session: Session, workspace_id: int, name: str = "T") -> int:
    table = create_table(
        session,
        name=name,
        columns=[ColumnSpec("A")],
        rows=[["x"]],
        max_cell_chars=100,
        workspace_id=workspace_id,
    )
    session.commit()
    assert table.id is not None
    return table.id


# --- passwords and signing in --------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short", "too short (5 characters)"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("password123", "too easy to guess"),
        ("owner@example.com", "must not be your email"),
        ("x" * 300, "at most 256 characters"),
    ],
)
def test_a_weak_password_is_refused_with_the_rule(
    session: Session, password: str, says: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        accounts.create_owner(
            session, email="owner@example.com", name="", password=password, now=utcnow()
        )
    assert says in refused.value.message
    session.rollback()
    assert accounts.setup_pending(session)


def test_the_owner_owns_every_workspace_and_set_up_happens_once(session: Session) -> None:
    owner = accounts.create_owner(
        session, email=" Owner@Example.com ", name="O", password="a long passphrase", now=utcnow()
    )
    session.commit()
    assert owner.email == "owner@example.com" and owner.is_admin
    assert [w.role for w in workspaces.workspaces_of(session, user_id=owner.id or 0)] == ["owner"]
    with pytest.raises(InvalidInputError, match="already set up"):
        accounts.create_owner(
            session, email="two@example.com", name="", password="another passphrase", now=utcnow()
        )


def test_a_wrong_password_and_an_unknown_email_get_the_same_message(session: Session) -> None:
    add_user(session, email="ann@example.com", password="ann's passphrase")
    messages = set()
    for email, password in (
        ("ann@example.com", "wrong one"),
        ("bob@example.com", "ann's passphrase"),
    ):
        with pytest.raises(InvalidInputError) as refused:
            accounts.sign_in(session, email=email, password=password)
        messages.add(refused.value.message)
    assert messages == {"The email or the password is wrong."}
    assert accounts.sign_in(session, email="ANN@example.com", password="ann's passphrase").email


def test_failed_sign_ins_are_limited_per_email_and_the_window_moves_on(session: Session) -> None:
    now = utcnow()
    for _ in range(5):
        accounts.check_attempts(session, email="ann@example.com", ip="10.0.0.1", limit=5, now=now)
        accounts.record_failure(session, email="ann@example.com", ip="10.0.0.1", now=now)
    with pytest.raises(TooManyAttemptsError) as refused:
        accounts.check_attempts(session, email="ann@example.com", ip="10.0.0.2", limit=5, now=now)
    assert "try again in 15 minutes" in refused.value.message and refused.value.retry_after == 900
    later = now + timedelta(minutes=16)
    accounts.check_attempts(session, email="ann@example.com", ip="10.0.0.1", limit=5, now=later)
    accounts.record_failure(session, email="x@example.com", ip="10.0.0.1", now=later)
    assert len(session.exec(select(LoginAttempt)).all()) == 1  # the old ones were dropped


# --- sessions ------------------------------------------------------------------------------


def test_a_ticket_is_redeemed_once_within_a_minute_and_the_session_then_resolves(
    session: Session,
) -> None:
    user = add_user(session, email="ann@example.com")
    now = utcnow()
    ticket = sessions.start(
        session,
        box=BOX,
        user_id=user,
        method="password",
        return_to="/tables",
        policy=POLICY,
        now=now,
    )
    redeemed = sessions.redeem(session, box=BOX, ticket=ticket, now=now)
    assert redeemed.return_to == "/tables" and redeemed.max_age_seconds == 2 * 86400
    with pytest.raises(InvalidInputError, match="already used"):
        sessions.redeem(session, box=BOX, ticket=ticket, now=now)
    late = sessions.start(
        session, box=BOX, user_id=user, method="password", return_to="/", policy=POLICY, now=now
    )
    with pytest.raises(InvalidInputError, match="expired"):
        sessions.redeem(session, box=BOX, ticket=late, now=now + timedelta(seconds=61))
    found = sessions.resolve(session, box=BOX, token=redeemed.token, policy=POLICY, now=now)
    assert found is not None and found.email == "ann@example.com"
    stored = session.exec(select(AuthSession.token_digest)).all()
    assert redeemed.token not in str(stored)  # only its digest is kept


def test_a_session_ends_when_idle_too_long_too_old_revoked_or_signed_out_everywhere(
    session: Session,
) -> None:
    user = add_user(session, email="ann@example.com")
    now = utcnow()

    def fresh() -> str:
        return sessions.open_now(
            session, box=BOX, user_id=user, method="password", policy=POLICY, now=now
        ).token

    def live(token: str, at: object = now) -> bool:
        return sessions.resolve(session, box=BOX, token=token, policy=POLICY, now=at) is not None  # type: ignore[arg-type]

    idle = fresh()
    assert live(idle, now + timedelta(minutes=59)) and not live(idle, now + timedelta(minutes=121))
    old = fresh()
    for steps in range(1, 96):  # active every half hour, but older than the maximum at the end
        assert live(old, now + timedelta(minutes=30 * steps))
    assert not live(old, now + timedelta(days=2, minutes=1))
    one, two = fresh(), fresh()
    principal = sessions.resolve(session, box=BOX, token=one, policy=POLICY, now=now)
    assert principal is not None
    sessions.revoke(session, session_id=principal.session_id, now=now)
    assert not live(one) and live(two)
    assert sessions.revoke_all(session, user_id=user, now=now) >= 1
    assert not live(two)
    assert not live("made-up") and not live("")


def test_the_session_cookie_is_read_from_any_cookie_header() -> None:
    header = 'theme=dark; enrichment_session=abc-123_x; other="a b"'
    assert sessions.token_from_cookie_header(header) == "abc-123_x"
    assert sessions.token_from_cookie_header('bad"cookie; enrichment_session=t1') == "t1"
    assert sessions.token_from_cookie_header("theme=dark") is None
    assert sessions.token_from_cookie_header("") is None


# --- invitations ---------------------------------------------------------------------------


def test_an_invitation_works_once_carries_its_role_and_expires(session: Session) -> None:
    owner = add_user(session, email="owner@example.com")
    now = utcnow()
    code, _ = workspaces.invite(
        session,
        box=BOX,
        workspace_id=1,
        role=Role.EDITOR,
        by_user_id=owner,
        by_role=Role.OWNER,
        note="Eve",
        ttl=timedelta(days=7),
        now=now,
    )
    info = workspaces.invitation_info(session, box=BOX, code=code, now=now)
    assert (info.workspace, info.role, info.invited_by) == (
        "Default workspace",
        "editor",
        "owner@example.com",
    )
    eve = workspaces.create_invited_user(
        session, email="eve@example.com", name="Eve", password="eve's passphrase", now=now
    )
    workspaces.accept_invitation(session, box=BOX, code=code, user_id=eve.id or 0, now=now)
    assert [w.role for w in workspaces.workspaces_of(session, user_id=eve.id or 0)] == ["editor"]
    with pytest.raises(InvalidInputError, match="already used"):
        workspaces.invitation_info(session, box=BOX, code=code, now=now)
    expiring, _ = workspaces.invite(
        session,
        box=BOX,
        workspace_id=1,
        role=Role.VIEWER,
        by_user_id=owner,
        by_role=Role.OWNER,
        note="",
        ttl=timedelta(days=7),
        now=now,
    )
    with pytest.raises(InvalidInputError, match="expired"):
        workspaces.invitation_info(session, box=BOX, code=expiring, now=now + timedelta(days=8))
    with pytest.raises(InvalidInputError, match="not valid"):
        workspaces.invitation_info(session, box=BOX, code="made-up", now=now)
    with pytest.raises(AccessDenied, match="above your own role"):
        workspaces.invite(
            session,
            box=BOX,
            workspace_id=1,
            role=Role.ADMIN,
            by_user_id=eve.id or 0,
            by_role=Role.EDITOR,
            note="",
            ttl=timedelta(days=1),
            now=now,
        )


def test_the_last_owner_stays_and_only_owners_touch_owners(session: Session) -> None:
    owner = add_user(session, email="owner@example.com", role=Role.OWNER)
    admin = add_user(session, email="admin@example.com", role=Role.ADMIN)
    with pytest.raises(InvalidInputError, match="needs an owner"):
        workspaces.change_role(
            session, workspace_id=1, user_id=owner, role=Role.VIEWER, by_role=Role.OWNER
        )
    with pytest.raises(AccessDenied):
        workspaces.remove_member(
            session, workspace_id=1, user_id=owner, by_role=Role.ADMIN, now=utcnow()
        )
    workspaces.change_role(
        session, workspace_id=1, user_id=admin, role=Role.VIEWER, by_role=Role.ADMIN
    )


# --- tokens --------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_as_a_digest_revocable_and_shrinks_with_its_owner(
    session: Session,
) -> None:
    editor = add_user(session, email="ed@example.com", role=Role.EDITOR)
    now = utcnow()
    with pytest.raises(AccessDenied, match="cannot be above your own"):
        api_tokens.create_token(
            session,
            box=BOX,
            user_id=editor,
            workspace_id=1,
            member_role=Role.EDITOR,
            role=Role.ADMIN,
            name="ci",
            now=now,
        )
    token, row = api_tokens.create_token(
        session,
        box=BOX,
        user_id=editor,
        workspace_id=1,
        member_role=Role.EDITOR,
        role=Role.EDITOR,
        name="ci",
        now=now,
    )
    assert token.startswith("enr_") and token not in row.token_digest and row.prefix == token[:8]
    principal = api_tokens.resolve_token(session, box=BOX, token=token, now=now)
    assert isinstance(principal, TokenPrincipal) and principal.role is Role.EDITOR
    table = table_in(session, 1)
    assert authorize(session, principal, Action.RUN, table_id=table).role is Role.EDITOR
    workspaces.change_role(
        session, workspace_id=1, user_id=editor, role=Role.VIEWER, by_role=Role.OWNER
    )
    shrunk = api_tokens.resolve_token(session, box=BOX, token=token, now=now)
    with pytest.raises(AccessDenied):
        authorize(session, shrunk, Action.RUN, table_id=table)
    api_tokens.revoke_token(
        session, workspace_id=1, token_id=row.id or 0, user_id=editor, any_owner=False, now=now
    )
    assert api_tokens.resolve_token(session, box=BOX, token=token, now=now) is None


def test_a_token_made_before_a_key_rotation_works_and_is_re_digested(session: Session) -> None:
    user = add_user(session, email="ann@example.com", role=Role.OWNER)
    token, row = api_tokens.create_token(
        session,
        box=BOX,
        user_id=user,
        workspace_id=1,
        member_role=Role.OWNER,
        role=Role.VIEWER,
        name="old",
        now=utcnow(),
    )
    rotated = SecretBox.from_keys([NEW_KEY, OLD_KEY])  # APP_SECRET_KEY=<new>,<old>
    assert api_tokens.resolve_token(session, box=rotated, token=token, now=utcnow()) is not None
    assert row.token_digest == rotated.digest(token)


# --- the rule ------------------------------------------------------------------------------


def test_the_rule_for_every_action_and_role(session: Session) -> None:
    other = Workspace(name="B")
    session.add(other)
    session.commit()
    mine, theirs = table_in(session, 1), table_in(session, other.id or 0)
    for role in Role:
        user = add_user(session, email=f"{role.value}@example.com", role=role)
        who = UserPrincipal(user_id=user, session_id=0, email=f"{role.value}@example.com")
        for action in Action:
            if role.at_least(MIN_ROLE[action]):
                grant = authorize(session, who, action, table_id=mine)
                assert (grant.workspace_id, grant.role, grant.table_id) == (1, role, mine)
            else:
                with pytest.raises(
                    AccessDenied, match=f"Your role in this workspace is {role.value}"
                ):
                    authorize(session, who, action, table_id=mine)
            with pytest.raises(NotFoundError, match=rf"Table {theirs} does not exist\."):
                authorize(session, who, action, table_id=theirs)
    with pytest.raises(SignInRequired):
        authorize(session, None, Action.VIEW, table_id=mine)
    with pytest.raises(NotFoundError, match=r"Table 999 does not exist\."):
        authorize(session, ServicePrincipal(), Action.VIEW, table_id=999)
    assert (
        authorize(session, ServicePrincipal(), Action.MANAGE_WORKSPACE, table_id=theirs).role
        is Role.OWNER
    )
    assert session.get(DataTable, theirs) is not None and session.get(User, 1) is not None
