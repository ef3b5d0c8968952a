"""Every command that writes to a real AWS account says which one and asks first, unless --yes; on an
emulator (a custom endpoint) it does not ask."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from glueline.ops import cli

AWS = ("123456789012", "eu-west-1", "https://sts.eu-west-1.amazonaws.com")
EMULATOR = ("000000000000", "us-east-1", "http://127.0.0.1:4566")


@pytest.fixture
def account(monkeypatch):
    """The account the commands reach, and what they did after the question (nothing, if refused)."""
    done: list[str] = []
    where = {"account": AWS}

    def client(service, *args, **kwargs):
        done.append(f"called {service}")
        raise SystemExit(0)

    @contextmanager
    def resolve_target(settings, **kwargs):
        account, region, endpoint = where["account"]
        yield SimpleNamespace(
            settings=settings,
            account=account,
            region=region,
            endpoint=endpoint,
            on_aws="amazonaws.com" in endpoint,
            description="an account",
            stack=None,
            client=client,
        )

    def deployer_for(target, **kwargs):
        def deploy():
            done.append("deployed")
            raise SystemExit(0)

        return SimpleNamespace(target=target, settings=target.settings, deploy=deploy)

    monkeypatch.setattr(cli, "resolve_target", resolve_target)
    monkeypatch.setattr(cli, "deployer_for", deployer_for)
    return SimpleNamespace(done=done, where=where)


@pytest.mark.parametrize("command", [["run"], ["trigger", "--schedule"], ["bootstrap"], ["deploy"]], ids=lambda c: c[0])
def test_a_real_account_is_named_and_asked_for(account, command):
    refused = CliRunner().invoke(cli.app, command, input="n\n")
    assert refused.exit_code == 1, refused.output
    assert "account 123456789012, region eu-west-1" in refused.output and "AWS account 123456789012?" in refused.output
    assert account.done == []

    CliRunner().invoke(cli.app, [*command, "--yes"])
    assert account.done != []


@pytest.mark.parametrize("command", [["trigger", "--schedule"], ["bootstrap"]], ids=lambda c: c[0])
def test_an_emulator_is_not_asked_for(account, command):
    account.where["account"] = EMULATOR
    result = CliRunner().invoke(cli.app, command)
    assert "?" not in result.output and account.done != []
