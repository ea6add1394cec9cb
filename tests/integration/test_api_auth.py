"""Every REST route asks the access rule: no token, a bad token, another workspace's token and
a role too low are all refused, and a refused request changes nothing.

The routes are not listed by hand: they are read from the Starlette app that ``build_api``
returns (the app ``rx.App(api_transformer=...)`` mounts), every method of every route, HEAD
included, and checked against the OpenAPI document. Each ``/api`` route carries the action it
was declared with (``endpoint(handler, Action.…)``); the only other routes are the four
sign-in routes under ``/auth``, which are public by design and listed here. For each route:

* no credentials, or any of the bad credentials a client or an attacker would send (a wrong,
  truncated, extended or re-cased service key, other schemes, the key in the query…): 401;
* the owner of workspace B, with a personal token, about workspace A's table or job: 404,
  worded as for one that does not exist;
* a viewer's token of workspace A, where the action needs more (run, cancel): 403;
* a revoked token: 401;
* and the database unchanged after all of them. Then the service key and A's owner's token
  get through, so the refusals were about who asked.

The service key's comparison must be constant-time. Timing it in a test would be flaky and
prove little, so ``test_the_key_is_only_ever_compared_in_constant_time`` reads the API's source
instead: it follows every value derived from the configured key (a small taint analysis over
the AST) and fails if one reaches ``==``, ``!=``, ``in``, ``<``… or a string method such as
``startswith``, or if the key is never handed to ``hmac``/``secrets.compare_digest`` as bytes.
The same checker is run on short sources that compare with ``==`` or ``startswith`` to show
that it catches them.
"""

from __future__ import annotations

import ast
import base64
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import SQLModel, text
from starlette.applications import Starlette
from starlette.routing import Mount, Route

import enrichment_app.api as api_package
from enrichment_app.api import build_api, openapi_document
from enrichment_app.db.models import DataTable, Workspace
from enrichment_app.db.sessions import unit_of_work
from enrichment_app.domain import CellRef, utcnow
from enrichment_app.runtime import Runtime
from enrichment_app.services.access import MIN_ROLE, Action, Role
from enrichment_app.services.api_tokens import revoke_token
from enrichment_app.services.jobs import create_job
from enrichment_app.services.tables import create_table
from enrichment_app.settings import Settings
from tests.integration.db_helpers import column_refs, seed_demo_table
from tests.integration.runtimes import closing
from tests.support.accounts import add_user, api_token

API_KEY = "Key-0f1E2d3C4b5A-enrichment-API"
"""Mixed case, so that a case-insensitive comparison would show."""

PUBLIC_ROUTES = {"/auth/session", "/auth/signed-out", "/auth/oidc/start", "/auth/oidc/callback"}
"""The sign-in routes: how a browser gets a session, so they cannot need one. None of them
reads or writes a table (tests/integration/test_auth_routes.py)."""


# --- the routes, from the app itself -------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    """The route's path as Starlette has it, e.g. ``/api/jobs/{job_id:int}``."""
    action: Action | None

    @property
    def documented_path(self) -> str:
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", self.template)


def served_operations(app: Starlette) -> list[Operation]:
    found: list[Operation] = []

    def walk(routes: Iterable[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                actions = getattr(route.endpoint, "actions", None) or {}
                single = getattr(route.endpoint, "action", None)
                for method in sorted(route.methods or ()):
                    action = actions.get("GET" if method == "HEAD" else method, single)
                    found.append(Operation(method, prefix + route.path, action))
            else:
                raise AssertionError(f"a route of an unknown kind: {route!r}")

    walk(app.routes, "")
    return found


ALL = served_operations(build_api(lambda: pytest.fail("no request is made")))
OPERATIONS = [op for op in ALL if op.template.startswith("/api/")]


def test_the_routes_come_from_the_app_and_match_the_document() -> None:
    assert len(OPERATIONS) >= 4
    served = {(op.documented_path, op.method.lower()) for op in OPERATIONS if op.method != "HEAD"}
    documented = {
        (path, method) for path, item in openapi_document()["paths"].items() for method in item
    }
    assert served == documented
    assert {
        ("/api/tables/{table_id}/enrich", "post"),
        ("/api/jobs/{job_id}", "get"),
        ("/api/jobs/{job_id}/cancel", "post"),
        ("/api/openapi.json", "get"),
    } <= served


NEEDS = {
    ("POST", "/api/tables/{table_id:int}/enrich"): Role.EDITOR,
    ("POST", "/api/tables/{table_id:int}/enrich-view"): Role.EDITOR,
    ("POST", "/api/jobs/{job_id:int}/cancel"): Role.EDITOR,
    ("POST", "/api/tables"): Role.EDITOR,
    ("POST", "/api/tables/import"): Role.EDITOR,
    ("DELETE", "/api/tables/{table_id:int}"): Role.ADMIN,
    ("POST", "/api/tables/{table_id:int}/rows"): Role.EDITOR,
    ("PATCH", "/api/tables/{table_id:int}/rows/{row_id:int}"): Role.EDITOR,
    ("POST", "/api/tables/{table_id:int}/columns"): Role.EDITOR,
    ("DELETE", "/api/tables/{table_id:int}/columns/{column_id:int}"): Role.EDITOR,
    ("PATCH", "/api/tables/{table_id:int}/columns/{column_id:int}"): Role.EDITOR,
    ("DELETE", "/api/tables/{table_id:int}/rows/{row_id:int}"): Role.EDITOR,
}
"""The least role each route needs when more than a viewer's: the roles table of
docs/security.md, written here apart from the code, so a route declared too low fails."""


def test_every_route_needs_the_role_the_roles_table_says() -> None:
    wrong = {
        f"{op.method} {op.template}": (
            MIN_ROLE[op.action].value,
            NEEDS.get((op.method, op.template), Role.VIEWER).value,
        )
        for op in OPERATIONS
        if op.action is not None
        and MIN_ROLE[op.action] is not NEEDS.get((op.method, op.template), Role.VIEWER)
    }
    assert wrong == {}, f"(declared, expected): {wrong}"


def test_every_api_route_declares_its_action_and_the_rest_are_the_sign_in_routes() -> None:
    assert [op.template for op in OPERATIONS if op.action is None] == []
    assert {op.template for op in ALL if op not in OPERATIONS} == PUBLIC_ROUTES
    assert {op.template for op in ALL if op.template in PUBLIC_ROUTES and op.action} == set()


# --- fixtures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Real ids, so a request that got past the key would do something."""

    table_id: int
    job_id: int
    cells: list[CellRef]
    row_id: int
    column_id: int
    """An enrichment column nothing else reads and no job uses, so deleting it succeeds."""
    spare_table_id: int
    """A table with no running job, so deleting it succeeds."""

    def url(self, operation: Operation) -> str:
        url = operation.template
        deleting_table = operation.method == "DELETE" and url.endswith("{table_id:int}")
        ids = {
            "table_id": self.spare_table_id if deleting_table else self.table_id,
            "job_id": self.job_id,
            "row_id": self.row_id,
            "column_id": self.column_id,
        }
        for name, value in ids.items():
            url = re.sub(r"\{" + name + r":\w+\}", str(value), url)
        assert "{" not in url, f"no test value for a parameter of {operation.template}"
        return url

    def request(self, operation: Operation) -> dict[str, Any]:
        """The body (and its type) that the route accepts with the right key."""
        route = (operation.method, re.sub(r"\{\w+:\w+\}", "{}", operation.template))
        bodies: dict[tuple[str, str], dict[str, Any]] = {
            ("POST", "/api/tables/{}/enrich"): {
                "json": {
                    "cells": [{"rowId": c.row_id, "columnId": c.column_id} for c in self.cells]
                }
            },
            ("POST", "/api/tables/{}/enrich-view"): {
                "json": {"columnId": self.cells[0].column_id, "view": {"search": "Cedar"}}
            },
            ("POST", "/api/tables"): {"json": {"name": "Auth", "columns": ["A"]}},
            ("POST", "/api/tables/{}/rows"): {"json": {"rows": [{"Company": "Auth Inc"}]}},
            ("PATCH", "/api/tables/{}/rows/{}"): {"json": {"Company": "Auth Inc"}},
            ("POST", "/api/tables/{}/columns"): {"json": {"name": "Auth column"}},
            ("PATCH", "/api/tables/{}/columns/{}"): {
                "json": {"name": "Auth renamed", "config": {"template": "Hi {Company}"}}
            },
            ("POST", "/api/tables/import"): {
                "content": b"a,b\n1,2\n",
                "headers": {"Content-Type": "text/csv"},
            },
        }
        return bodies.get(route, {})


@dataclass(frozen=True)
class Tokens:
    owner_a: str
    viewer_a: str
    owner_b: str
    revoked: str


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        settings=settings.model_copy(update={"enrichment_api_key": SecretStr(API_KEY)})
    )
    async with closing(runtime):
        yield runtime


@pytest.fixture
def target(runtime: Runtime) -> Target:
    with unit_of_work(runtime.open_session) as session:
        table_id = seed_demo_table(session, max_cell_chars=runtime.settings.max_cell_chars)
        domain = column_refs(session, table_id, "Email domain")
        job = create_job(session=session, table_id=table_id, cells=domain[:2], max_cells=100).job
        intro = column_refs(session, table_id, "Intro line")[-1]  # a row no job uses
        spare = create_table(session=session, name="Spare", columns=[], rows=[], max_cell_chars=10)
        session.commit()
        assert job.id is not None and spare.id is not None
        assert session.get(DataTable, table_id).workspace_id == 1  # type: ignore[union-attr]
        return Target(
            table_id=table_id,
            job_id=job.id,
            cells=domain[2:5],
            row_id=intro.row_id,
            column_id=intro.column_id,
            spare_table_id=spare.id,
        )


@pytest.fixture
def tokens(runtime: Runtime, target: Target) -> Tokens:
    box = runtime.secret_box
    with runtime.open_session() as session:
        other = Workspace(name="Workspace B")
        session.add(other)
        session.commit()
        assert other.id is not None
        owner = add_user(session, email="owner@example.com", role=Role.OWNER)
        viewer = add_user(session, email="viewer@example.com", role=Role.VIEWER)
        owner_b = add_user(session, email="b@example.com", role=Role.OWNER, workspace_id=other.id)
        revoked = api_token(session, box=box, user_id=owner, workspace_id=1, role=Role.OWNER)
        revoke_token(
            session, workspace_id=1, token_id=1, user_id=owner, any_owner=True, now=utcnow()
        )
        session.commit()
        return Tokens(
            owner_a=api_token(session, box=box, user_id=owner, workspace_id=1, role=Role.OWNER),
            viewer_a=api_token(session, box=box, user_id=viewer, workspace_id=1, role=Role.VIEWER),
            owner_b=api_token(
                session, box=box, user_id=owner_b, workspace_id=other.id, role=Role.OWNER
            ),
            revoked=revoked,
        )


@pytest.fixture
def client(runtime: Runtime) -> Iterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(lambda: runtime))
    yield httpx.AsyncClient(transport=transport, base_url="http://testserver")


def snapshot(runtime: Runtime) -> tuple[object, ...]:
    """Every row of every table (the tokens' ``last_used_at`` aside: a request that got in
    with a valid token records its use)."""
    rows = []
    with runtime.open_session() as session:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c.name for c in table.c if c.name != "last_used_at"]
            found = session.exec(  # type: ignore[call-overload]
                text(f"SELECT {', '.join(columns)} FROM {table.name} ORDER BY 1")
            ).all()
            rows.append((table.name, tuple(tuple(r) for r in found)))
    return tuple(rows)


# --- refusals ------------------------------------------------------------------------------


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


BAD_CREDENTIALS: dict[str, dict[str, Any]] = {
    "no header": {},
    "empty bearer": {"headers": {"Authorization": "Bearer "}},
    "wrong key of the same length": {"headers": {"Authorization": "Bearer " + "x" * len(API_KEY)}},
    "the key in another case": {"headers": {"Authorization": f"Bearer {API_KEY.swapcase()}"}},
    "the key upper-cased": {"headers": {"Authorization": f"Bearer {API_KEY.upper()}"}},
    "a prefix of the key": {"headers": {"Authorization": f"Bearer {API_KEY[:-1]}"}},
    "half of the key": {"headers": {"Authorization": f"Bearer {API_KEY[: len(API_KEY) // 2]}"}},
    "the key and more": {"headers": {"Authorization": f"Bearer {API_KEY}0"}},
    "the key twice": {"headers": {"Authorization": f"Bearer {API_KEY} {API_KEY}"}},
    "Basic scheme": {"headers": {"Authorization": _basic("api", API_KEY)}},
    "Token scheme": {"headers": {"Authorization": f"Token {API_KEY}"}},
    "no scheme": {"headers": {"Authorization": API_KEY}},
    "non-ASCII bytes": {"headers": {"Authorization": b"Bearer \xe9\xff" + API_KEY.encode()}},
    "key in the query": {"params": {"api_key": API_KEY, "key": API_KEY}},
    "key in another header": {"headers": {"X-API-Key": API_KEY, "Api-Key": API_KEY}},
    "a made-up personal token": {"headers": {"Authorization": "Bearer enr_" + "A" * 43}},
}


async def _send(
    client: httpx.AsyncClient, operation: Operation, target: Target, **kwargs: Any
) -> httpx.Response:
    body = target.request(operation)
    headers = {
        "Idempotency-Key": f"auth-test-{operation.method}",
        **body.pop("headers", {}),
        **kwargs.pop("headers", {}),
    }
    return await client.request(
        operation.method, target.url(operation), headers=headers, **body, **kwargs
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method} {op.template}")
async def test_every_route_refuses_whoever_may_not_and_changes_nothing(
    operation: Operation,
    client: httpx.AsyncClient,
    runtime: Runtime,
    target: Target,
    tokens: Tokens,
) -> None:
    before = snapshot(runtime)
    head = operation.method == "HEAD"
    for name, credentials in {
        **BAD_CREDENTIALS,
        "a revoked token": {"headers": _bearer(tokens.revoked)},
    }.items():
        response = await _send(client, operation, target, **credentials)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"].startswith('Bearer realm="enrichment_app"')
        assert response.headers["cache-control"] == "no-store"
        assert API_KEY not in response.text and API_KEY not in str(response.headers)
        if not head:
            error = response.json()["error"]
            assert error["code"] == "unauthorized", name
            assert "ENRICHMENT_API_KEY" in error["message"], name

    # Another workspace's token about A's table or job. (A route about no table, such as
    # creating one, acts in the token's own workspace: it cannot even name A.)
    about_a_table = "{table_id" in operation.template or "{job_id" in operation.template
    if about_a_table:
        response = await _send(client, operation, target, headers=_bearer(tokens.owner_b))
        assert response.status_code == 404, response.text
        if not head:
            assert response.json()["error"]["message"].endswith("does not exist.")
    assert operation.action is not None
    if MIN_ROLE[operation.action] is not Role.VIEWER:
        response = await _send(client, operation, target, headers=_bearer(tokens.viewer_a))
        assert response.status_code == 403, response.text
        if not head:
            assert "Your role in this workspace is viewer" in response.json()["error"]["message"]
    assert snapshot(runtime) == before, "a refused request changed the database"

    # A's owner gets through the same route (the service key too, where a second request can
    # succeed): the refusals were about who asked.
    changes = operation.method in ("DELETE", "POST", "PATCH")
    for token in (tokens.owner_a,) if changes else (tokens.owner_a, API_KEY):
        response = await _send(client, operation, target, headers=_bearer(token))
        assert response.status_code in {200, 201, 202, 204}, response.text


# --- the comparison is constant-time -------------------------------------------------------

CONSTANT_TIME = {"compare_digest"}
"""``hmac.compare_digest`` and ``secrets.compare_digest`` (the same function)."""
HARMLESS_METHODS = {"get_secret_value", "encode", "strip"}
"""Methods called on the key that do not compare it."""


@dataclass(frozen=True)
class KeyUse:
    line: int
    what: str


def _call_name(call: ast.Call) -> str:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return call.func.id if isinstance(call.func, ast.Name) else ""


def _functions(tree: ast.AST) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _params(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    return [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]


def key_comparisons(source: str) -> tuple[list[KeyUse], list[KeyUse]]:
    """(unsafe uses, constant-time comparisons) of the API key in ``source``.

    A value is the key's if it reads ``enrichment_api_key``, is a parameter annotated
    ``SecretStr``, or is computed from such a value. Values are followed through assignments
    and into the parameters of the module's own functions, to a fixed point. An unsafe use is a
    comparison (other than ``is None``), a method call other than ``get_secret_value``,
    ``encode`` or ``strip``, or ``compare_digest`` on something not made by ``.encode()``.
    """
    functions = _functions(ast.parse(source))
    tainted: dict[str, set[str]] = {
        name: {
            a.arg
            for a in _params(f)
            if a.annotation is not None and "SecretStr" in ast.unparse(a.annotation)
        }
        for name, f in functions.items()
    }

    def is_tainted(node: ast.AST, names: set[str]) -> bool:
        return any(
            (isinstance(sub, ast.Name) and sub.id in names)
            or (isinstance(sub, ast.Attribute) and sub.attr == "enrichment_api_key")
            for sub in ast.walk(node)
        )

    changed = True
    while changed:
        changed = False
        for name, function in functions.items():
            names = tainted[name]
            for node in ast.walk(function):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign) and is_tainted(node.value, names):
                    targets = node.targets
                elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
                    if node.value is not None and is_tainted(node.value, names):
                        targets = [node.target]
                elif isinstance(node, ast.Call) and _call_name(node) in functions:
                    callee = functions[_call_name(node)]
                    params = [a.arg for a in _params(callee) if a.arg != "self"]
                    for index, arg in enumerate(node.args):
                        if index < len(params) and is_tainted(arg, names):
                            targets.append(ast.Name(params[index]))
                    for keyword in node.keywords:
                        if keyword.arg and is_tainted(keyword.value, names):
                            targets.append(ast.Name(keyword.arg))
                    for target in targets:
                        if isinstance(target, ast.Name) and target.id not in tainted[callee.name]:
                            tainted[callee.name].add(target.id)
                            changed = True
                    continue
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Name) and sub.id not in names:
                            names.add(sub.id)
                            changed = True

    unsafe: list[KeyUse] = []
    safe: list[KeyUse] = []
    for name, function in functions.items():
        names = tainted[name]
        encoded = {
            t.id
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and _call_name(node.value) == "encode"
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(function):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if not any(is_tainted(o, names) for o in operands):
                    continue
                is_none_check = all(isinstance(op, ast.Is | ast.IsNot) for op in node.ops) and all(
                    isinstance(o, ast.Constant) and o.value is None for o in node.comparators
                )
                if not is_none_check:
                    unsafe.append(KeyUse(node.lineno, ast.unparse(node)))
            elif isinstance(node, ast.Call):
                called = _call_name(node)
                if called in CONSTANT_TIME:
                    if any(is_tainted(a, names) for a in node.args):
                        as_bytes = all(
                            (isinstance(a, ast.Call) and _call_name(a) == "encode")
                            or (isinstance(a, ast.Name) and a.id in encoded)
                            for a in node.args
                        )
                        use = KeyUse(node.lineno, ast.unparse(node))
                        (safe if as_bytes else unsafe).append(use)
                elif (
                    isinstance(node.func, ast.Attribute)
                    and is_tainted(node.func.value, names)
                    and called not in HARMLESS_METHODS
                ):
                    unsafe.append(KeyUse(node.lineno, ast.unparse(node)))
    return unsafe, safe


def test_the_key_is_only_ever_compared_in_constant_time() -> None:
    package = Path(api_package.__file__).parent
    sources = sorted(package.glob("*.py"))
    assert len(sources) >= 4
    unsafe: list[str] = []
    safe: list[str] = []
    for path in sources:
        found_unsafe, found_safe = key_comparisons(path.read_text())
        unsafe += [f"{path.name}:{u.line}: {u.what}" for u in found_unsafe]
        safe += [f"{path.name}:{u.line}: {u.what}" for u in found_safe]
    assert not unsafe, unsafe
    assert len(safe) == 1, safe  # the one comparison, in _is_service_key
    assert safe[0].startswith("callers.py:") and "compare_digest(given, expected)" in safe[0]


def test_only_the_api_package_reads_the_key() -> None:
    """The analysis above covers every place the key is read: settings define it, api/ uses it."""
    root = Path(api_package.__file__).parents[1]
    readers = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if any(
            isinstance(node, ast.Attribute) and node.attr == "enrichment_api_key"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    }
    assert readers and all(r.startswith("api/") for r in readers), readers


CHECKER_CASES = {
    "equality": (
        "def check(api_key: SecretStr, token: str) -> bool:\n"
        "    return token == api_key.get_secret_value()\n",
        1,
        0,
    ),
    "inequality through a local": (
        "def check(settings, token):\n"
        "    expected = settings.enrichment_api_key.get_secret_value()\n"
        "    if token != expected:\n"
        "        raise ValueError\n",
        1,
        0,
    ),
    "a prefix check": (
        "def check(api_key: SecretStr | None, token: str) -> bool:\n"
        "    key = api_key.get_secret_value()\n"
        "    return key.startswith(token)\n",
        1,
        0,
    ),
    "membership": (
        "def check(api_key: SecretStr, token: str) -> bool:\n"
        "    keys = {api_key.get_secret_value()}\n"
        "    return token in keys\n",
        1,
        0,
    ),
    "compare_digest on str": (
        "def check(api_key: SecretStr, token: str) -> bool:\n"
        "    return hmac.compare_digest(token, api_key.get_secret_value())\n",
        1,
        0,
    ),
    "through a helper": (
        "def check(settings, token):\n"
        "    return _same(token, settings.enrichment_api_key.get_secret_value())\n"
        "def _same(given, expected):\n"
        "    return given == expected\n",
        1,
        0,
    ),
    "constant-time on bytes": (
        "def check(api_key: SecretStr | None, token: str) -> bool:\n"
        "    if api_key is None:\n"
        "        return True\n"
        "    expected = api_key.get_secret_value().encode()\n"
        "    return secrets.compare_digest(token.encode(), expected)\n",
        0,
        1,
    ),
}


@pytest.mark.parametrize("case", CHECKER_CASES)
def test_the_checker_catches_a_timing_unsafe_comparison(case: str) -> None:
    source, unsafe, safe = CHECKER_CASES[case]
    found_unsafe, found_safe = key_comparisons(source)
    assert (len(found_unsafe), len(found_safe)) == (unsafe, safe), (found_unsafe, found_safe)


async def test_a_token_lists_only_its_own_workspace_s_tables(
    client: httpx.AsyncClient, target: Target, tokens: Tokens
) -> None:
    mine = await client.get("/api/tables", headers=_bearer(tokens.owner_a))
    theirs = await client.get("/api/tables", headers=_bearer(tokens.owner_b))
    every = await client.get("/api/tables", headers=_bearer(API_KEY))
    names = {r: {t["id"] for t in r.json()["tables"]} for r in (mine, theirs, every)}
    assert target.table_id in names[mine] and names[theirs] == set()
    assert names[every] >= names[mine]


async def test_a_column_config_with_credentials_is_an_admin_s_to_save_as_on_the_page(
    runtime: Runtime, client: httpx.AsyncClient, target: Target, tokens: Tokens
) -> None:
    """``PATCH /columns/{id}`` is an editor's, but a config holding a credential (``•••`` for a
    kept one included) needs an admin's token, as the page's column dialog does."""
    with runtime.open_session() as session:
        editor = add_user(session, email="editor@example.com", role=Role.EDITOR)
        editor_token = api_token(
            session, box=runtime.secret_box, user_id=editor, workspace_id=1, role=Role.EDITOR
        )
        session.commit()
    url = f"/api/tables/{target.table_id}/columns/{target.column_id}"
    lookup = {
        "method": "GET",
        "url": "https://api.example.com/lookup?q={Company}",
        "auth": {"type": "bearer", "token": "lookup-credential-" + "7" * 20},
    }
    plain = await client.patch(
        url, json={"config": {"template": "Hello {Company}"}}, headers=_bearer(editor_token)
    )
    assert plain.status_code == 200, plain.text
    before = snapshot(runtime)
    refused = await client.patch(
        url, json={"enricher": "http_json", "config": lookup}, headers=_bearer(editor_token)
    )
    assert refused.status_code == 403, refused.text
    assert "Your role in this workspace is editor" in refused.json()["error"]["message"]
    assert snapshot(runtime) == before
    allowed = await client.patch(
        url, json={"enricher": "http_json", "config": lookup}, headers=_bearer(tokens.owner_a)
    )
    assert allowed.status_code == 200, allowed.text
    kept = allowed.json()["column"]["config"]
    assert kept["auth"]["token"] == "•••"
    again = await client.patch(url, json={"config": kept}, headers=_bearer(editor_token))
    assert again.status_code == 403, "sending ••• back is saving credentials too"
