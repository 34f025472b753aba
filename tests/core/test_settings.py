"""Settings validation: missing or bad variables are named, secrets never echoed."""

from __future__ import annotations

import pytest

from core.settings import SettingsError, load_settings

SECRET = "super-secret-value-that-must-not-leak-0123456789"


def test_valid_environment_loads() -> None:
    settings = load_settings({"WARREN_SECRET_KEY": SECRET, "WARREN_HTTP_PORT": "8123"})
    assert settings.http_port == 8123
    assert settings.redacted()["secret_key"] == "***"


def test_missing_secret_key_is_named() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"WARREN_HTTP_PORT": "8000"})
    assert info.value.variable == "WARREN_SECRET_KEY"
    assert "WARREN_SECRET_KEY" in str(info.value)


@pytest.mark.parametrize("port", ["not-a-port", "0", "70000", "-1", ""])
def test_bad_http_port_is_named(port: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"WARREN_SECRET_KEY": SECRET, "WARREN_HTTP_PORT": port})
    assert info.value.variable == "WARREN_HTTP_PORT"
    assert "WARREN_HTTP_PORT" in str(info.value)
    assert SECRET not in str(info.value)


def test_short_secret_key_is_named_without_its_value() -> None:
    short = "tooshort-secret"
    with pytest.raises(SettingsError) as info:
        load_settings({"WARREN_SECRET_KEY": short})
    assert info.value.variable == "WARREN_SECRET_KEY"
    assert short not in str(info.value)
    assert short not in repr(info.value)


def test_bad_secret_typed_field_does_not_echo_other_secrets() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(
            {
                "WARREN_SECRET_KEY": SECRET,
                "WARREN_LLM_API_KEY": "sk-live-abcdef",
                "WARREN_LOG_LEVEL": "LOUD",
            }
        )
    assert info.value.variable == "WARREN_LOG_LEVEL"
    message = str(info.value)
    assert SECRET not in message and "sk-live-abcdef" not in message


def test_redacted_masks_credentials_inside_urls() -> None:
    settings = load_settings(
        {
            "WARREN_SECRET_KEY": "k" * 40,
            "WARREN_DATABASE_URL": "postgresql://warren:hunter2@127.0.0.1:5432/warren",
            "WARREN_NATS_URL": "nats://s3cr3ttoken@127.0.0.1:4222",
        }
    )
    shown = str(settings.redacted())
    assert "hunter2" not in shown and "s3cr3ttoken" not in shown
    assert "postgresql://warren:***@127.0.0.1:5432/warren" in shown


def test_an_unbuilt_sandbox_provider_stops_start_up() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"WARREN_SECRET_KEY": "k" * 40, "WARREN_SANDBOX_PROVIDER": "modal"})
    assert caught.value.variable == "WARREN_SANDBOX_PROVIDER"


def test_nats_credentials_are_validated_without_echo_and_redacted() -> None:
    login = "warren_pool:a-long-nats-password"
    settings = load_settings({"WARREN_SECRET_KEY": SECRET, "WARREN_NATS_CREDENTIALS_POOL": login})
    assert settings.nats_credentials_pool == login
    assert settings.redacted()["nats_credentials_pool"] == "***"
    bad = "no colon but a secret"
    with pytest.raises(SettingsError) as info:
        load_settings({"WARREN_SECRET_KEY": SECRET, "WARREN_NATS_CREDENTIALS_INGRESS": bad})
    assert info.value.variable == "WARREN_NATS_CREDENTIALS_INGRESS"
    assert bad not in str(info.value)


def test_serve_autoscaling_bounds_are_checked_together() -> None:
    settings = load_settings(
        {
            "WARREN_SECRET_KEY": SECRET,
            "WARREN_SERVE_MIN_REPLICAS": "2",
            "WARREN_SERVE_MAX_REPLICAS": "8",
        }
    )
    assert (settings.serve_min_replicas, settings.serve_max_replicas) == (2, 8)
    with pytest.raises(SettingsError) as info:
        load_settings(
            {
                "WARREN_SECRET_KEY": SECRET,
                "WARREN_SERVE_MIN_REPLICAS": "9",
                "WARREN_SERVE_MAX_REPLICAS": "8",
            }
        )
    assert info.value.variable == "WARREN_SERVE_MIN_REPLICAS"
    assert "WARREN_SERVE_MAX_REPLICAS" in str(info.value)
