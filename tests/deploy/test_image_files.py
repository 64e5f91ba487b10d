"""The image's recipe, checked without building it (no registry is reachable here):
deploy/Dockerfile's stages, user, entrypoint and ports, .dockerignore, and the wheel the
image installs (built here from the tracked files, as the build context gives them)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.deploy.compose_files import central_compose, edge_compose, evpark_specs

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "python3-dev", "libpq-dev")


def instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a stage's text, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", stage)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    """Each stage's instructions, from its FROM on (the global ARGs before the first)."""
    text = DOCKERFILE.read_text()
    parts = re.split(r"^(?=FROM )", text, flags=re.M)
    return [instructions(part) for part in parts if part.startswith("FROM ")]


def test_two_stages_the_final_one_slim_without_compilers() -> None:
    builder, final = stages()
    assert builder[0][1].endswith("AS builder")
    global_args = dict(
        arg.split("=", 1)
        for word, arg in instructions(DOCKERFILE.read_text().split("\nFROM ")[0])
        if word == "ARG"
    )
    assert global_args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    final_runs = " ".join(arg for word, arg in final if word == "RUN")
    assert not any(re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", final_runs) for c in COMPILERS)
    assert "apt-get install" not in final_runs
    copies = [arg for word, arg in final if word == "COPY"]
    assert copies == ["--from=builder /opt/evpark /opt/evpark"]  # the venv, nothing else
    builder_runs = " ".join(arg for word, arg in builder if word == "RUN")
    assert "pip install ." in builder_runs
    assert "-e" not in builder_runs.split()


def test_the_final_stage_runs_evpark_as_a_fixed_non_root_user() -> None:
    final = dict(stages()[-1])  # the last of each instruction
    uid, gid = final["USER"].split(":")
    assert int(uid) >= 1000
    assert int(gid) >= 1000
    assert f"--uid {uid}" in DOCKERFILE.read_text()
    assert final["ENTRYPOINT"] == '["evpark"]'
    assert final["VOLUME"] == '["/var/lib/evpark"]'
    assert final["WORKDIR"] == "/var/lib/evpark"
    assert "org.opencontainers.image.version" in final["LABEL"]
    # the compose files run it as that user too
    for compose, instead in (central_compose()[0], None), edge_compose():
        for spec in evpark_specs(compose, instead):
            assert compose.services[spec.name]["user"] == f"{uid}:{gid}", spec.name


def test_every_port_the_compose_files_use_is_exposed() -> None:
    exposed = {int(p) for p in dict(stages()[-1])["EXPOSE"].split()}
    compose, _ = central_compose()
    used = {port for spec in evpark_specs(compose) for port in spec.ports}
    used |= {port for spec in evpark_specs(*edge_compose()) for port in spec.ports}
    assert used == exposed


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for what in (".git", ".venv", "data", "**/__pycache__", "deploy/compose/*.env", "tests"):
        assert what in ignored


def test_the_wheel_holds_every_tracked_file_of_the_packages(tmp_path: Path) -> None:
    """What ``pip install .`` in the image installs: every package, with its templates,
    static files and migrations (a file missing here is missing in the image)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    tracked = subprocess.run(
        [git, "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    context = tmp_path / "context"
    for name in tracked:
        if (ROOT / name).is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, context / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "wheel"), str(context)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("evpark-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in patterns}
    assert packages == set(project["tool"]["mypy"]["packages"])  # one list of packages
    in_packages = [name for name in tracked if name.split("/")[0] in packages]
    assert in_packages
    assert [name for name in in_packages if name not in packaged] == []
    entry_points = next(n for n in packaged if n.endswith("entry_points.txt"))
    assert "evpark = evpark.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
