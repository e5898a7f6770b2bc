"""The reference pages cover the code: no setting or command can go undocumented.

Settings: every default in ``jobline/conf.py`` and ``jobline/api/conf.py``, every name the
service reads from the environment and every ``JOBLINE_*`` setting it defines has its row in
docs/reference/settings.md, with a default and a meaning. Commands: the command-line page is
generated from the parser (scripts/docs_hooks.py); every command and sub-command has its
section there.
"""

from __future__ import annotations

import importlib.util
import re

from jobline import conf
from jobline.api import conf as api_conf
from jobline.cli.main import build_parser
from tests.conftest import ROOT

DOCS = ROOT / "docs"
SERVICE_SETTINGS = ROOT / "jobline" / "service" / "settings.py"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts/docs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_jobline_reads() -> set[str]:
    source = SERVICE_SETTINGS.read_text()
    from_env = re.findall(r'env\.(?:text|flag|number)\(\s*"([A-Z0-9_]+)"', source)
    defined = re.findall(r"^(JOBLINE_[A-Z0-9_]+) =", source, re.MULTILINE)
    return {*conf.DEFAULTS, *api_conf.DEFAULTS, *from_env, *defined}


def rows_naming(page: str, name: str) -> list[list[str]]:
    """The table rows of ``page`` with ``name`` in backticks, split into their cells."""
    rows = [line for line in page.splitlines() if line.startswith("|") and f"`{name}`" in line]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_every_setting_has_a_row_with_a_default_and_a_meaning():
    page = (DOCS / "reference" / "settings.md").read_text()
    names = settings_jobline_reads()
    assert len(names) > 40  # the regexes still find the settings
    missing = sorted(name for name in names if not rows_naming(page, name))
    assert not missing, f"settings missing from docs/reference/settings.md: {missing}"
    for name in names:
        for cells in rows_naming(page, name):
            assert len(cells) == 4 and all(cells[2:]), f"{name}: default and meaning: {cells}"


def test_every_command_has_a_section_on_the_generated_cli_page():
    hooks = _hooks()
    page = hooks.cli_markdown()
    parser = build_parser()
    top = next(a for a in parser._actions if a.dest == "command")
    names = {f"jobline {name}" for name in top.choices} - {"jobline token"}
    names |= {"jobline token create", "jobline token revoke"}
    sections = set(re.findall(r"^## `(jobline [a-z -]+)`$", page, re.MULTILINE))
    assert names <= sections, f"commands missing from the CLI page: {names - sections}"
    assert "<!-- generated: cli -->" in (DOCS / "reference" / "cli.md").read_text()
    assert "<!-- generated: rest-api -->" in (DOCS / "reference" / "rest-api.md").read_text()
