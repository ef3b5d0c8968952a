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
            partition="aws",
            endpoint=endpoint,
            on_aws="amazonaws.com" in endpoint,
            description="an account",
            stack=None,
            client=client,
            schedule_event=lambda: {"detail-type": "Scheduled Event"},
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


@pytest.fixture
def served(monkeypatch):
    """The console apps the command would serve (test clients), served nowhere."""
    apps: list = []
    monkeypatch.setattr(cli, "_console_data", lambda target: SimpleNamespace(runs=lambda: []))
    monkeypatch.setattr(cli, "serve", lambda app, host, port, announce: apps.append(app.test_client()))
    return apps


def test_the_console_on_a_real_account_reads_only_unless_let_act_then_asks_naming_it(account, served, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "prod")
    read_only = CliRunner().invoke(cli.app, ["console"])
    assert read_only.exit_code == 0 and "?" not in read_only.output and "--allow-actions" in read_only.output
    page = served[0].get("/runs").get_data(as_text=True)
    assert 'data-where="account">123456789012<' in page and 'data-where="profile">prod<' in page
    assert served[0].get("/sweep").status_code == 403

    refused = CliRunner().invoke(cli.app, ["console", "--allow-actions"], input="n\n")
    assert refused.exit_code == 1 and "AWS account 123456789012?" in refused.output and len(served) == 1
    CliRunner().invoke(cli.app, ["console", "--allow-actions"], input="y\n")
    allowed = CliRunner().invoke(cli.app, ["console", "--allow-actions", "--yes"])
    assert "?" not in allowed.output
    assert [web.get("/sweep").status_code for web in served[1:]] == [200, 200]


def test_the_console_on_an_emulator_acts_without_asking(account, served):
    account.where["account"] = EMULATOR
    result = CliRunner().invoke(cli.app, ["console"])
    assert result.exit_code == 0 and "?" not in result.output and served[0].get("/sweep").status_code == 200
