"""The compose files' promises, checked without Docker (the integration suite runs them with it)."""

from __future__ import annotations

import pytest
import yaml

from glueline.local.compose import images
from glueline.local.compose.stack import EMULATORS, ComposeRecord, ComposeStack, RunningCompose, project_dir
from glueline.local.embedded.stack import EmbeddedRecord, EmbeddedStack, RunningEmbedded
from glueline.local.inner_loop import DEBUG_PORT
from glueline.local.ports import free_port, remembered_port
from glueline.local.running import StackError
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


def test_the_inner_loops_ports_are_the_usual_ones_where_free_and_remembered(tmp_path):
    import socket

    stack = ComposeStack(Settings(state_dir=tmp_path))
    with socket.socket() as taken:  # someone else's debugger on 5678, if no one's is yet
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", DEBUG_PORT))
            taken.listen()
        except OSError:
            pass
        ports = stack._ports()
    assert ports["debug"] != DEBUG_PORT
    assert stack._ports(probe=False) == ports  # remembered: the running stack's published ports
    published = {port.rsplit(":", 1)[1] for port in merged("ministack")["services"]["glue"]["ports"]}
    assert published >= {"5678", "4040", "18080"}  # the container's ports compose publishes
    usual = free_port()
    assert remembered_port(tmp_path / "ports.json", "ui", 0, usual=usual) == usual  # free: the usual one


def test_a_compose_stacks_debugger_listens_in_the_container_and_is_reached_through_its_published_port(tmp_path):
    record = ComposeRecord("p", "ministack", "http://e", "http://g", 1, "us-east-1", "pw", 15678, 14040, 28080)
    info = RunningCompose(ComposeStack(Settings(state_dir=tmp_path)), record)
    loop = info.inner_loop()
    assert (loop.debug_listen, loop.debug_attach) == ("0.0.0.0:5678", "127.0.0.1:15678")
    assert loop.debug_root == "/home/hadoop/glue-runner/debug"  # where .vscode/launch.json's compose entry maps
    assert (loop.spark_ui_url, loop.spark_history_port) == ("http://127.0.0.1:14040", 28080)
    assert info.inner_loop(debug_port=15678) == loop
    with pytest.raises(StackError, match="127.0.0.1:15678, not 5678.*GLUELINE_DEBUG_PORT"):
        info.inner_loop(debug_port=5678)


def test_launch_json_maps_the_repository_onto_where_each_stack_lays_a_debugged_run_out():
    import json
    import re

    text = re.sub(r"^\s*//.*$", "", (ROOT / ".vscode" / "launch.json").read_text(), flags=re.MULTILINE)
    configurations = {c["name"]: c for c in json.loads(text)["configurations"]}
    settings = Settings(state_dir=ROOT / ".glueline")  # the default state directory, in the workspace
    embedded = RunningEmbedded(
        EmbeddedStack(settings), EmbeddedRecord("http://e", "http://g", "us-east-1", {}, None, None, 0.0)
    )
    record = ComposeRecord("p", "ministack", "http://e", "http://g", 1, "us-east-1", "pw", DEBUG_PORT, 4040, 18080)
    compose = RunningCompose(ComposeStack(settings), record)
    for loop in (embedded.inner_loop(), compose.inner_loop()):
        configuration = configurations[loop.launch_config]
        remote = {
            m["localRoot"]: m["remoteRoot"].replace("${workspaceFolder}", str(ROOT))
            for m in configuration["pathMappings"]
        }
        assert remote == {
            "${workspaceFolder}/services/glue": f"{loop.debug_root}/script",
            "${workspaceFolder}/src/glueline": f"{loop.debug_root}/lib/glueline",
        }
        assert f"{configuration['connect']['host']}:{configuration['connect']['port']}" == loop.debug_attach
