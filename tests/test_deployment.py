"""Deployment files: the container's first start builds the index, and the Dockerfile, compose
file, systemd unit and Makefile agree with each other. (No container engine runs here; the
Dockerfile itself is linted by hadolint in `make lint`.)"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"


def run_entrypoint(tmp_path: Path, index_dir: Path, *args: str) -> list[str]:
    """Run the entrypoint with a stand-in `brobygger` that records how it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake = bin_dir / "brobygger"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n', encoding="utf-8")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "INDEX_DIR": str(index_dir)}
    subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, check=True, capture_output=True)
    return calls.read_text(encoding="utf-8").splitlines()


def test_the_first_start_builds_the_index(tmp_path: Path) -> None:
    assert run_entrypoint(tmp_path, tmp_path / "index", "run") == ["reindex", "run"]


def test_a_later_start_uses_the_index_it_has(tmp_path: Path) -> None:
    index = tmp_path / "index"
    (index / "builds" / "1").mkdir(parents=True)
    (index / "current").symlink_to(index / "builds" / "1")
    assert run_entrypoint(tmp_path, index, "run") == ["run"]


def test_other_commands_pass_through_without_building(tmp_path: Path) -> None:
    assert run_entrypoint(tmp_path, tmp_path / "index", "doctor") == ["doctor"]


def _makefile_torch() -> str:
    found = re.search(r"torch==([\d.]+)", (REPO / "Makefile").read_text(encoding="utf-8"))
    assert found is not None
    return found.group(1)


def test_the_image_installs_the_same_cpu_torch_as_the_makefile_first() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert f"ARG TORCH_VERSION={_makefile_torch()}" in dockerfile
    assert dockerfile.index('"torch==${TORCH_VERSION}"') < dockerfile.index("pip install .")
    assert "whl/cpu" in dockerfile


def test_the_image_runs_as_a_user_with_volumes_and_a_healthcheck() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2  # multi-stage
    users = re.findall(r"^USER (.+)$", dockerfile, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0", "0:0")
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"brobygger\", \"doctor\"\]", dockerfile, re.M)
    volumes = re.search(r"^VOLUME \[(.+)\]$", dockerfile, re.MULTILINE)
    assert volumes is not None
    declared = set(re.findall(r'"([^"]+)"', volumes.group(1)))
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["bot"]
    mounted = {volume.split(":")[1] for volume in service["volumes"]}
    assert mounted == declared
    env = service["environment"]
    assert {env["KNOWLEDGE_DIR"], env["INDEX_DIR"], env["DATA_DIR"]} == declared


def test_the_image_leaves_out_secrets_and_local_state() -> None:
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".env", ".venv", "data", "index", ".git"):
        assert entry in ignored


@pytest.mark.parametrize("key", ["ExecStart", "ExecStartPre", "User", "EnvironmentFile"])
def test_the_systemd_unit_runs_the_bot(key: str) -> None:
    unit = (REPO / "docs" / "brobygger.service").read_text(encoding="utf-8")
    assert re.search(rf"^{key}=", unit, re.MULTILINE), key
    assert "brobygger run" in unit
    assert "brobygger reindex" in unit  # the first start builds the index here too
