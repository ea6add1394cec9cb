"""The docs show only commands something runs, their links resolve, and the settings are listed.

Pages: README.md, docs/*.md, bench/README.md and trigger/README.md (``tests.support.docs``).

* Every command in a ``sh``/``bash`` block is either run by the test command (it stands in
  scripts/test.sh or .ci/run) or by a named test (``RUN_BY`` says which, and the test must
  exist), or its block is followed by a ``text`` block with the output someone captured by
  hand. A command that cannot run here goes in prose, saying so.
* Every relative link and ``#anchor`` resolves to a file and a heading.
* Every setting of enrichment_app/settings.py is in the README's configuration table, under
  each of its environment names, with its default; and the table lists nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest

from enrichment_app.settings import Settings
from tests.support.docs import PAGES, SHELL, anchors, code_blocks, links, shell_commands
from tests.support.paths import ROOT

SCREENSHOT_TEST = (
    "tests/docs/test_screenshot.py::test_the_screenshot_script_captures_the_table_page_mid_run"
)
RUN_BY: dict[str, str] = {
    # The README's two commands: the screenshot script starts the app with the first.
    "bash scripts/run.sh": SCREENSHOT_TEST,
    "bash scripts/test.sh": ".ci/run",
    # The test command's own steps.
    "source scripts/env.sh": "scripts/test.sh",
    "bash scripts/bootstrap.sh --dev": "scripts/test.sh",
    "ruff check .": "scripts/test.sh",
    "ruff format --check .": "scripts/test.sh",
    "mypy": "scripts/test.sh",
    "cd trigger": "scripts/test.sh",
    "npx --no-install tsc --noEmit": "scripts/test.sh",
    "npx --no-install tsc -p tsconfig.test.json": "scripts/test.sh",
    "node --test build/test/": "scripts/test.sh",
    "pytest tests --ignore=tests/e2e --ignore=tests/soak --ignore=tests/topology"
    " --ignore=tests/security/live": "scripts/test.sh",
    "pytest tests/security/live": "scripts/test.sh",
    "pytest tests/e2e --ignore=tests/e2e/trigger": "scripts/test.sh",
    "pytest tests/e2e/trigger": "scripts/test.sh",
    "pytest tests/soak": "scripts/test.sh",
    "pytest tests/topology": "scripts/test.sh",
    # Run by a test.
    "python scripts/screenshot.py": SCREENSHOT_TEST,
    "python -m bench.report": (
        "tests/unit/test_bench_report.py::test_python_m_bench_report_rewrites_the_page_it_is_given"
    ),
    "reflex run --env prod": (
        "tests/topology/test_browser.py::test_every_tab_on_every_worker_follows_the_run_live"
    ),
    "reflex run --env prod --backend-only --backend-port 8000": (
        "tests/soak/test_fault_matrix.py::test_fault_matrix"
    ),
}
"""Command → what runs it: scripts/test.sh or .ci/run (the command stands in that file), or a
test (``path::name``). Keep it small: a command worth showing is worth running."""
RUN_BY_PREFIX: dict[str, tuple[str, str]] = {
    "curl ": (
        "tests/docs/test_api_examples.py::test_every_curl_example_of_docs_api_md_answers_as_shown",
        "docs/api.md",
    ),
}
"""Command prefix → (the test that runs every such command, the one page it reads them from)."""
OUTPUT = "text"
"""The language of a block of output captured by hand."""
NOT_SETTINGS = {"GRANIAN_WORKERS", "REFLEX_API_URL"}
"""Read by Reflex, not by settings.py; the README lists them in a table of their own.
(``REFLEX_REDIS_URL`` is read by both: settings.py gives it to the table change bus.)"""


# --- commands -------------------------------------------------------------------------------


def runner_problem(runner: str, command: str) -> str | None:
    """Why ``runner`` does not run ``command``, or None if it does."""
    path, _, test = runner.partition("::")
    file = ROOT / path
    if not file.is_file():
        return f"{path} does not exist"
    if test:
        if not re.search(rf"^(async )?def {re.escape(test)}\(", file.read_text(), re.M):
            return f"{path} has no test {test}"
        return None
    if command not in file.read_text():
        return f"{path} does not run `{command}`"
    return None


def command_problems(pages: Iterable[Path]) -> list[str]:
    """Every command shown in a shell block that nothing runs, said with where it stands."""
    found = []
    for page in pages:
        for block in code_blocks(page):
            if block.lang not in SHELL or block.followed_by == OUTPUT:
                continue
            for command in shell_commands(block):
                runner = RUN_BY.get(command)
                prefixed = [v for k, v in RUN_BY_PREFIX.items() if command.startswith(k)]
                if runner is None and prefixed:
                    runner, only_on = prefixed[0]
                    if page.resolve() != (ROOT / only_on).resolve():
                        runner = None
                if runner is None:
                    found.append(
                        f"{block.where}: `{command}` is run by nothing: add it to RUN_BY with the"
                        f" test that runs it, or follow its block with a ```{OUTPUT} block of its"
                        " output"
                    )
                elif problem := runner_problem(runner, command):
                    found.append(f"{block.where}: `{command}`: {problem}")
    return found


def test_every_command_the_docs_show_is_run_by_something() -> None:
    assert command_problems(PAGES) == []


def test_every_registry_entry_is_shown_by_a_page_and_its_runner_runs_it() -> None:
    shown = {c for p in PAGES for b in code_blocks(p) if b.lang in SHELL for c in shell_commands(b)}
    assert sorted(set(RUN_BY) - shown) == [], "unused entries: remove them"
    problems = {c: runner_problem(r, c) for c, r in RUN_BY.items()}
    assert {c: p for c, p in problems.items() if p} == {}
    for prefix, (test, page) in RUN_BY_PREFIX.items():
        assert runner_problem(test, prefix) is None
        assert any(c.startswith(prefix) for c in shown), f"no page shows a {prefix!r} command"
        assert (ROOT / page).is_file()


# --- links ----------------------------------------------------------------------------------


def link_problems(pages: Iterable[Path]) -> list[str]:
    """Every relative link whose file or heading does not exist."""
    found = []
    for page in pages:
        for line, target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{line}"
            if not file.exists():
                found.append(f"{where}: {target} → no such file")
            elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
                found.append(f"{where}: {target} → no heading #{anchor} in {file.name}")
    return found


def test_every_relative_link_and_anchor_resolves() -> None:
    assert link_problems(PAGES) == []


def test_the_readme_is_short_and_links_to_every_page_of_docs() -> None:
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 200
    linked = {(readme.parent / t.partition("#")[0]).resolve() for _, t in links(readme)}
    assert sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in linked) == []


# --- the checks fail on a bad page ----------------------------------------------------------


def page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(text)
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n")
    return path


@pytest.mark.parametrize(
    "text",
    [
        "```sh\nbash scripts/deploy-everything.sh\n```\n",
        "```bash\nsource scripts/env.sh && pytest tests/e2e -k one\n```\n",
        "```sh\nruff check . \\\n  --fix\n```\n",
        "```sh\nbash scripts/deploy-everything.sh\n```\n\nIt prints:\n\n```text\nok\n```\n",
        "```sh\ncurl -s localhost:8000/api/jobs/1\n```\n",
    ],
    ids=["unknown", "chained", "continued", "output not next", "curl off its page"],
)
def test_a_command_nothing_runs_is_reported(tmp_path: Path, text: str) -> None:
    assert len(command_problems([page(tmp_path, text)])) == 1


@pytest.mark.parametrize(
    "text",
    [
        "```sh\nsource scripts/env.sh && ruff check .   # lint\n```\n",
        "```sh\nbash scripts/deploy-everything.sh\n```\n\n```text\ndeployed\n```\n",
        "Prose may name `bash scripts/deploy-everything.sh`, saying it is not run here.\n",
    ],
    ids=["registered", "output captured by hand", "prose"],
)
def test_a_command_something_runs_is_accepted(tmp_path: Path, text: str) -> None:
    assert command_problems([page(tmp_path, text)]) == []


def test_a_registry_entry_whose_test_is_gone_is_reported() -> None:
    assert runner_problem("tests/unit/test_docs.py::test_that_does_not_exist", "x") is not None
    assert runner_problem("tests/unit/no_such_file.py::test_x", "x") is not None
    assert runner_problem("scripts/test.sh", "pytest tests/nowhere") is not None


@pytest.mark.parametrize(
    "text",
    [
        "See [the guide](missing.md).\n",
        "See [a section](other.md#no-such-section).\n",
        "See [below](#nothing-here).\n\n# Title\n",
        "![a picture](assets/none.png)\n",
    ],
    ids=["file", "anchor in another page", "anchor in the page", "image"],
)
def test_a_broken_link_is_reported(tmp_path: Path, text: str) -> None:
    assert len(link_problems([page(tmp_path, text)])) == 1


def test_good_links_and_code_are_accepted(tmp_path: Path) -> None:
    text = (
        "# Title\n\nSee [a section](other.md#a-section), [the title](#title),"
        " [the web](https://example.com) and `[not a link](nowhere.md)`.\n\n"
        "```md\n[in code](nowhere.md)\n```\n"
    )
    assert link_problems([page(tmp_path, text)]) == []


# --- the configuration table ----------------------------------------------------------------


def settings_table(readme: Path) -> dict[str, list[str]]:
    """The README's settings table: a row's first cell → its cells."""
    lines = readme.read_text().splitlines()
    start = lines.index("## Configuration")
    rows: dict[str, list[str]] = {}
    for line in lines[start:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not line.startswith(("| variable", "|---")):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def env_names(field: str) -> list[str]:
    alias = Settings.model_fields[field].validation_alias
    choices = getattr(alias, "choices", [])
    return [c for c in choices if isinstance(c, str) and c.isupper()]


def shown_default(value: object) -> str:
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    rows = settings_table(ROOT / "README.md")
    for field, info in Settings.model_fields.items():
        names = env_names(field)
        assert names, f"{field} has no environment name"
        matching = [r for key, r in rows.items() if all(f"`{n}`" in key for n in names)]
        assert matching, f"the README's configuration table has no row for {', '.join(names)}"
        assert matching[0][1].startswith(shown_default(info.default)), (names, matching[0][1])
    listed = {n for key in rows for n in re.findall(r"`([A-Z][A-Z0-9_]+)`", key)}
    known = {n for field in Settings.model_fields for n in env_names(field)}
    assert listed - known == set(), "the table lists variables settings.py does not read"
    assert NOT_SETTINGS.isdisjoint(known)
