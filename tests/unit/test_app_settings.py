"""The application's own settings (module_utils/app_settings.py) and how HEALTH-DIAG, REDIS-APP-PING and
HEALTH-ENV use them: process environment first, then env files, the inventory's copy only without a source."""
import os
import subprocess
import sys

import pytest

from ansible_collections.hunter.ops.plugins.module_utils import validate
from ansible_collections.hunter.ops.plugins.module_utils.app_settings import AppSettings, SettingUnknown
from ansible_collections.hunter.ops.plugins.modules import app_environment, dependency_diag


@pytest.fixture
def app_process(tmp_path):
    """A real process with the application's environment, and its pidfile."""
    env = dict(os.environ, HUNTER_REDIS_URL="redis://:procpw@10.0.0.7:6380/1", HUNTER_ENVIRONMENT="production")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    pidfile = tmp_path / "app.pid"
    pidfile.write_text("%d\n" % proc.pid)
    yield str(pidfile)
    proc.kill()
    proc.wait()


def test_process_environment_wins_over_the_env_file(tmp_path, app_process):
    env_file = tmp_path / "app.env"
    env_file.write_text("HUNTER_REDIS_URL=redis://10.0.0.8:6379/0\nDATABASE_URL=postgresql://u:p@db/hunter\n")
    settings = AppSettings(app_process, [str(env_file)])
    found = settings.lookup(["REDIS_URL", "HUNTER_REDIS_URL"], fallback="redis://inventory:6379/0",
                            fallback_name="hunter_app_redis_url")
    assert found.value == "redis://:procpw@10.0.0.7:6380/1"
    assert found.origin.startswith("HUNTER_REDIS_URL in the environment of process ")
    assert found.evidence["variable"] == "HUNTER_REDIS_URL" and "procpw" not in str(found.evidence)
    db = settings.lookup(["DATABASE_URL"])  # not in the process: the env file has it
    assert db.value == "postgresql://u:p@db/hunter" and db.origin == "DATABASE_URL in environment file %s" % env_file


def test_the_inventory_copy_only_without_a_source_and_never_as_a_guess(tmp_path):
    found = AppSettings().lookup(["REDIS_URL"], fallback="redis://inv:6379/0", fallback_name="hunter_app_redis_url")
    assert found.value == "redis://inv:6379/0" and found.origin == "the inventory (hunter_app_redis_url)"
    env_file = tmp_path / "app.env"
    env_file.write_text("HUNTER_ENVIRONMENT=production\n")
    with pytest.raises(SettingUnknown) as err:
        AppSettings(None, [str(env_file)]).lookup(["REDIS_URL", "HUNTER_REDIS_URL"], fallback="redis://inv:6379/0")
    assert str(err.value) == "none of REDIS_URL, HUNTER_REDIS_URL is set in environment file %s" % env_file
    with pytest.raises(SettingUnknown) as err:
        AppSettings(str(tmp_path / "gone.pid")).lookup(["REDIS_URL"])
    assert "pidfile %s does not exist" % (tmp_path / "gone.pid") in str(err.value)


def settings_of(**params):
    base = dict(db_env_vars=["DATABASE_URL", "HUNTER_DATABASE_URL"], redis_env_vars=["REDIS_URL", "HUNTER_REDIS_URL"],
                db_host=None, db_port=5432, db_name=None, db_user=None, db_password=None, db_sslmode="prefer",
                db_sslrootcert=None, db_connect_timeout=5, db_statement_timeout=30, redis_url=None,
                redis_ca_path=None)
    base.update(params)
    return base


def test_diag_takes_the_apps_database_and_redis_from_its_env_file(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("DATABASE_URL=postgresql+psycopg://app:s3cret@10.0.0.5:5433/hunter?sslmode=disable\n"
                        "REDIS_URL=redis://:rpw@10.0.0.6:6379/2\n")
    params = settings_of(db_host="inventory-db", redis_url="redis://inventory:6379/0")
    problems, found = validate.InputProblems(), set()
    settings = AppSettings(None, [str(env_file)])
    how, kwargs, origin = dependency_diag.database_settings(params, problems, settings, found)
    assert how == "run" and kwargs["host"] == "10.0.0.5" and kwargs["port"] == 5433 and kwargs["sslmode"] == "disable"
    assert origin["variable"] == "DATABASE_URL" and "s3cret" in found
    how, target, origin = dependency_diag.redis_settings(params, problems, settings, 2.0, found)
    assert how == "run" and target.describe() == "10.0.0.6:6379 db 2" and origin["settings_from"].startswith("environment file")
    assert not problems.errors


def test_diag_settings_unknown_is_not_checked_and_a_malformed_app_url_is_named(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("DATABASE_URL=postgresql://app:pw@db:notaport/hunter\n")
    params = settings_of(redis_url="redis://inventory:6379/0")
    settings = AppSettings(None, [str(env_file)])
    how, part, dummy = dependency_diag.redis_settings(params, validate.InputProblems(), settings, 2.0, set())
    assert how == "part" and part["checked"] is False and "HUNTER_REDIS_URL" in part["reason"]
    how, db_part, dummy = dependency_diag.database_settings(params, validate.InputProblems(), settings, set())
    assert how == "part" and db_part["kind"] == "settings" and "DATABASE_URL" in db_part["error"]
    item, down = dependency_diag.diagnose(db_part, part)
    assert down == ["database"] and "redis not checked: settings unknown" in item["message"]


def test_environment_from_the_apps_configuration(tmp_path):
    env_file = tmp_path / "app.env"
    env_file.write_text("APP_ENV=staging\n")
    settings = AppSettings(None, [str(env_file)])
    item = app_environment.environment_item(settings, ["APP_ENV"], "production")
    assert item["status"] == "fail" and item["message"] == (
        "APP_ENV in environment file %s is 'staging', expected 'production'" % env_file)
    assert app_environment.environment_item(settings, ["HUNTER_ENVIRONMENT"], "production")["status"] == "fail"
    assert app_environment.environment_item(AppSettings(), ["APP_ENV"], "production")["status"] == "fail"
    assert app_environment.environment_item(settings, ["APP_ENV"], "staging")["status"] == "pass"
