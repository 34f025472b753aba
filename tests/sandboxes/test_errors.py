"""Redaction: secret values never survive into a SandboxError message."""

from __future__ import annotations

from sandboxes.errors import SandboxError, redact, secrets_of
from schemas.sandbox import AgentConfig, CreateSandboxOptions, RepoSpec, SecretFile


def test_redact_masks_values_urls_quoted_forms_and_auth_headers() -> None:
    text = (
        "env has hunter2-pass; url https://user:pw@host/x and http://tok@h/y; "
        "quoted a%2Fb%3Dc; Authorization: Bearer abc.def"
    )
    out = redact(text, ["hunter2-pass", "a/b=c"])
    for leaked in ("hunter2-pass", "user:pw", "tok@", "a%2Fb%3Dc", "abc.def"):
        assert leaked not in out
    assert "https://***@host/x" in out
    assert "Authorization: Bearer ***" in out


def test_short_values_are_not_treated_as_secrets() -> None:
    assert redact("exit code 1", ["1"]) == "exit code 1"


def test_secrets_of_collects_every_secret_of_a_request() -> None:
    opts = CreateSandboxOptions(
        session_id="s",
        env_vars={"A": "env-value"},
        repos=(RepoSpec(url="https://h/r", token="repo-token"),),
        secret_files=(SecretFile(values={"K": "file-value"}),),
        sandbox_token="sandbox-token",
        agent_config=AgentConfig(api_key="llm-key-1"),
    )
    assert secrets_of(opts) == {
        "env-value",
        "repo-token",
        "file-value",
        "sandbox-token",
        "llm-key-1",
    }


def test_sandbox_error_redacts_its_message() -> None:
    error = SandboxError("failed with s3cr3t-value at https://u:p@h/", secrets=["s3cr3t-value"])
    assert "s3cr3t-value" not in str(error)
    assert "u:p" not in str(error)
