"""The compose files' promises, checked without Docker (the integration suite runs them with it)."""

from __future__ import annotations

import pytest
import yaml

from glueline.local.compose import EMULATORS, ComposeStack, images, project_dir
from glueline.settings import Settings

ROOT = project_dir()


def merged(emulator: str) -> dict:
    """docker-compose.yml with compose/<emulator>.yml over it, merged as Compose merges services."""
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    override = yaml.safe_load((ROOT / "compose" / f"{emulator}.yml").read_text())
    for name, service in override["services"].items():
        target = base["services"].setdefault(name, {})
        for key, value in service.items():
            if isinstance(value, list) and isinstance(target.get(key), list):
                target[key] = target[key] + value
            else:
                target[key] = value
    return base


@pytest.mark.parametrize("emulator", EMULATORS)
def test_ports_are_published_on_loopback_only_and_every_service_has_a_healthcheck(emulator):
    services = merged(emulator)["services"]
    assert set(services) == {"aws", "postgres", "glue"}
    for name, service in services.items():
        assert all(port.startswith("127.0.0.1:") for port in service["ports"]), name
        assert service["healthcheck"]["test"], name
    assert {d: c["condition"] for d, c in services["glue"]["depends_on"].items()} == {
        "aws": "service_healthy",
        "postgres": "service_healthy",
    }


@pytest.mark.parametrize("emulator", EMULATORS)
def test_the_docker_socket_goes_only_to_an_emulator_that_runs_functions_in_containers(emulator):
    services = merged(emulator)["services"]
    with_socket = {name for name, s in services.items() if any("docker.sock" in v for v in s.get("volumes", []))}
    assert with_socket == ({"aws"} if emulator == "localstack" else set())


def test_no_password_is_written_in_the_compose_files():
    texts = [(ROOT / "docker-compose.yml").read_text()] + [p.read_text() for p in (ROOT / "compose").glob("*.yml")]
    services = merged("localstack")["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert not any("POSTGRES_PASSWORD:" in text for text in texts)


def test_an_explicit_setting_beats_the_offline_record_which_beats_the_default(monkeypatch, tmp_path):
    monkeypatch.setattr(images, "recorded", lambda: {"emulator": "ministack", "postgres_image": "offline/pg"})
    stack = ComposeStack(Settings(state_dir=tmp_path))
    assert stack.emulator == "ministack" and stack._setting("postgres_image") == "offline/pg"
    assert stack._setting("glue_base_image") == "public.ecr.aws/glue/aws-glue-libs:5"
    explicit = ComposeStack(Settings(state_dir=tmp_path, emulator="localstack", postgres_image="mine/pg:16"))
    assert explicit.emulator == "localstack" and explicit._setting("postgres_image") == "mine/pg:16"


def test_stand_ins_never_carry_an_upstream_name_and_install_our_pins():
    stand_ins = images.stand_ins()
    assert all(spec["image"].startswith("glueline-offline/") for spec in stand_ins.values())
    assert "ministack==1.5.33" in stand_ins["ministack"]["requirements"]
    assert "pyspark==3.5.9" in stand_ins["spark"]["requirements"]
