"""docs/ROLE-VARIABLES.md is generated from the roles' argument specs (scripts/gen_role_vars.py) and must
be current; with docs/INVENTORY.md it covers every knob a role has."""
import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ROLE-VARIABLES.md"


def generator():
    spec = importlib.util.spec_from_file_location("gen_role_vars", ROOT / "scripts" / "gen_role_vars.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_role_variables_doc_is_current():
    assert DOC.read_text() == generator().render(), \
        "docs/ROLE-VARIABLES.md is stale: run .venv/bin/python scripts/gen_role_vars.py"


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    module = generator()
    stale = tmp_path / "ROLE-VARIABLES.md"
    stale.write_text(module.render().replace("health_check_timeout", "health_check_timeout_renamed"))
    monkeypatch.setattr(module, "OUT", stale)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    assert module.main(["--check"]) == 1
    stale.write_text(module.render())
    assert module.main(["--check"]) == 0


def test_every_role_default_and_spec_option_is_documented():
    text = DOC.read_text()
    for role in sorted((ROOT / "roles").iterdir()):
        names = set(yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {})
        for entry in yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"].values():
            names |= set(entry.get("options") or {})
        missing = sorted(n for n in names if f"| `{n}` |" not in text)
        assert not missing, (role.name, missing)


def test_inventory_guide_links_the_role_variables_and_the_adapting_guide():
    inventory = (ROOT / "docs" / "INVENTORY.md").read_text()
    assert "(ROLE-VARIABLES.md)" in inventory and "(ADAPTING.md)" in inventory


# Set by health_check for redis_check (a host fact), not by operators.
INTERNAL = {"hunter_ops_health_redis_expression"}


def test_every_inventory_variable_a_role_reads_is_in_the_inventory_guide():
    inventory = (ROOT / "docs" / "INVENTORY.md").read_text()
    read = set()
    for defaults in (ROOT / "roles").glob("*/defaults/main.yml"):
        read |= set(re.findall(r"\{\{\s*(hunter_[a-z0-9_]+)", defaults.read_text()))
    missing = sorted(v for v in read - INTERNAL if f"`{v}`" not in inventory)
    assert not missing, missing
