"""validate.InputProblems: every bad value, named as the operator set it, for the items that use it."""
from ansible_collections.hunter.ops.plugins.module_utils import validate


def test_every_bad_value_is_kept_under_the_operators_name():
    problems = validate.InputProblems({"db_port": "hunter_app_db_port (health_check_db_port)"})
    assert problems.check("db_port", validate.port, "fivefourthreetwo") is None
    assert problems.check("base_url", validate.url, "ftp://x") is None
    assert problems.check("timeout", validate.positive_number, "5") == 5.0
    assert problems.bad("db_port", "db_host") == ["db_port"]
    assert problems.bad("timeout") == []
    msg = problems.message("db_port")
    assert msg.startswith("hunter_app_db_port (health_check_db_port): port must be a number")
    assert "fivefourthreetwo" in msg and "base_url" not in msg
    both = problems.message()
    assert "hunter_app_db_port (health_check_db_port): " in both and "base_url: " in both


def test_sub_keys_of_an_option_belong_to_it():
    problems = validate.InputProblems({"assertions": "health_check_assertions"})
    problems.add("assertions.HEALTH-DB", "invalid JMESPath expression")
    assert problems.bad("assertions") == ["assertions.HEALTH-DB"]
    assert problems.message() == "health_check_assertions.HEALTH-DB: invalid JMESPath expression"
