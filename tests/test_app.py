"""The application factory: configuration sources, profiles, clear errors."""

from __future__ import annotations

import pytest

from clientela.core.app import create_app
from clientela.core.errors import ConfigurationError


def test_configuration_precedence_file_then_environment_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "clientela.toml").write_text(
        'phone_default_region = "IT"\n[plugins]\ndisabled = ["prm"]\n[operational]\nx = 1\n'
    )
    app = create_app("onprem", HOME=str(tmp_path))
    assert app.config["PHONE_DEFAULT_REGION"] == "IT"
    assert app.config["PLUGINS_DISABLED"] == ["prm"]
    assert app.config["OPERATIONAL_X"] == 1
    assert app.extensions["clientela"].plugins.plugins["prm"].enabled is False

    monkeypatch.setenv("CLIENTELA_PHONE_DEFAULT_REGION", "ES")
    assert create_app("onprem", HOME=str(tmp_path)).config["PHONE_DEFAULT_REGION"] == "ES"
    app = create_app("onprem", HOME=str(tmp_path), PHONE_DEFAULT_REGION="GB")
    assert app.config["PHONE_DEFAULT_REGION"] == "GB"


def test_onprem_defaults_to_sqlite_in_the_home_folder_and_keeps_a_secret_key(tmp_path):
    app = create_app("onprem", HOME=str(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/clientela.db"
    key = app.config["SECRET_KEY"]
    assert len(key) >= 32
    assert create_app("onprem", HOME=str(tmp_path)).config["SECRET_KEY"] == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_profile_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIENTELA_PROFILE", "hosted")
    with pytest.raises(ConfigurationError, match="needs DATABASE_URL"):
        create_app(HOME=str(tmp_path))


def test_hosted_profile_refuses_sqlite(tmp_path):
    with pytest.raises(ConfigurationError) as err:
        create_app("hosted", HOME=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
                   SECRET_KEY="s")
    assert str(err.value) == "the hosted profile runs on PostgreSQL only; DATABASE_URL is a sqlite URL"


def test_unknown_profile_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="unknown profile 'cloud'"):
        create_app("cloud", HOME=str(tmp_path))


def test_broken_config_file_is_a_clear_error(tmp_path):
    (tmp_path / "clientela.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigurationError, match="clientela.toml"):
        create_app("onprem", HOME=str(tmp_path))


def test_no_two_schemas_share_an_openapi_name(tmp_path):
    """apispec renames clashing schema names silently (Member, Member1): clients would get
    unstable names, so every plugin's schema must have a name of its own."""
    import warnings

    from clientela.core.app import create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Multiple schemas resolved")
        app = create_app(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", HOME=str(tmp_path))
    assert app.test_client().get("/api/v1/openapi.json").status_code == 200


def test_plugin_apis_beside_api_v1_answer_errors_as_json(tmp_path):
    """/portal/api/v1 and /partner/api/v1 are APIs too: no HTML error page there."""
    from clientela.core.app import create_app

    app = create_app(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", HOME=str(tmp_path))
    client = app.test_client()
    for path, method, status in (("/partner/api/v1/leads", "PATCH", 405),
                                 ("/partner/api/v1/no-such-thing", "GET", 404),
                                 ("/portal/api/v1/no-such-thing", "GET", 401)):
        response = client.open(path, method=method)
        assert response.status_code == status
        assert response.is_json and response.json["status"] == status
    assert not client.get("/no-such-page").is_json


def test_ids_are_version_7_strictly_increasing_and_keep_to_the_clock():
    """A bulk import makes tens of ids per millisecond: the counter within the millisecond
    keeps them ordered without running the timestamp ahead of the clock (one millisecond
    per id put a million imported rows 16 minutes in the future)."""
    import time

    from clientela.core.db import new_id

    before_ms = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(200_000)]
    after_ms = time.time_ns() // 1_000_000
    assert all(a < b for a, b in zip(ids, ids[1:]))
    assert {i.version for i in ids[::997]} == {7}
    assert {i.variant for i in ids[::997]} == {__import__("uuid").RFC_4122}
    stamps = [i.int >> 80 for i in (ids[0], ids[-1])]
    assert before_ms - 1 <= stamps[0] and stamps[-1] <= after_ms + 50
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == len(ids)  # the random part varies
