"""docs/CHECKLIST.md is the project's own contract: it must name exactly the IDs of
plugins/module_utils/checklist.py, in report order, with the same owners and the same default GO list."""
import re
from pathlib import Path

from ansible_collections.hunter.ops.plugins.module_utils.checklist import BY_ID, CHECK_IDS, DEFAULT_REQUIRED

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "CHECKLIST.md"
ROW = re.compile(r"^\| ([A-Z]+-[A-Z0-9-]+) \| (.+) \| (.+) \| (yes|no[^|]*) \|$")
ID_LIKE = re.compile(r"\b(?:HEALTH|SENTRY|BACKUP|RESTORE|REDIS|API)-[A-Z0-9]+(?:-[A-Z0-9]+)*\b")


def rows():
    """(id, claim, reported_by, required, roles of the section) per item row, in the page's order."""
    found, roles = [], []
    for line in DOC.read_text().splitlines():
        if line.startswith("### "):
            roles = re.findall(r"\.\./roles/([a-z_]+)/README\.md", line)
        match = ROW.match(line)
        if match:
            found.append(match.groups() + (tuple(roles),))
    return found


def test_every_checklist_id_is_in_the_doc_and_nothing_else_in_report_order():
    ids = [r[0] for r in rows()]
    assert ids == list(CHECK_IDS)


def test_no_unknown_id_is_mentioned_anywhere_in_the_doc():
    mentioned = set(ID_LIKE.findall(DOC.read_text()))
    assert mentioned <= set(CHECK_IDS), mentioned - set(CHECK_IDS)


def test_required_column_is_the_default_go_list():
    required = [r[0] for r in rows() if r[3] == "yes"]
    assert required == [i for i in CHECK_IDS if i in DEFAULT_REQUIRED]


def test_each_item_names_its_role_and_real_modules():
    for check_id, claim, reported_by, dummy, roles in rows():
        assert BY_ID[check_id].role in roles, (check_id, roles)
        modules = re.findall(r"`([a-z_]+)`", reported_by)
        assert modules, check_id
        for module in modules:
            assert (ROOT / "plugins" / "modules" / f"{module}.py").is_file(), (check_id, module)
        assert len(claim) > 30, check_id


def test_readme_links_the_doc():
    assert "(docs/CHECKLIST.md)" in (ROOT / "README.md").read_text()
