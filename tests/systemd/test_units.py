"""The systemd units (systemd/): systemd accepts them, their sandbox scores an exposure of
2.0 or less (`systemd-analyze security`), the users they run as are created by the
sysusers file, and every credential they (and the docs) load is a secret the code reads.

No systemd runs as PID 1 on a CI machine, so the units are judged offline; the daemon
under the same restrictions is tests/systemd/test_sandboxed_process.py's.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from central.settings import CentralSettings
from edge.credentials import TEXT_SECRETS, TLS_KEY, charger_password_name
from tests.harness.processes import EVPARK
from tests.services import require_binary

ROOT = Path(__file__).resolve().parents[2]
UNITS = ("evpark-edge.service", "evpark-central.service")
INSTALLED = "/opt/evpark/bin/evpark"  # where the units expect evpark (docs/operations.md)
CREDENTIALS = "/etc/evpark/credentials"
_EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")
_LOAD_CREDENTIAL = re.compile(r"^#?LoadCredential=([^:\s]+):(\S+)$", re.M)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Each key of a unit file with its values in order (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def runnable_copy(unit: str, directory: Path, text: str | None = None) -> Path:
    """The unit with evpark where this test's venv has it (verify checks the path)."""
    source = text if text is not None else (ROOT / "systemd" / unit).read_text()
    copy = directory / unit
    copy.write_text(source.replace(INSTALLED, EVPARK))
    return copy


def exposure(unit: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    analyzed = subprocess.run(
        [require_binary("systemd-analyze"), "security", "--offline=yes", "--threshold=20",
         "--no-pager", str(unit)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    found = _EXPOSURE.search(analyzed.stdout)
    assert found is not None, analyzed.stdout + analyzed.stderr
    return float(found.group(1)), analyzed


def test_systemd_accepts_both_units(tmp_path: Path) -> None:
    copies = [str(runnable_copy(unit, tmp_path)) for unit in UNITS]
    verified = subprocess.run(
        [require_binary("systemd-analyze"), "verify", "--man=no", *copies],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")


@pytest.mark.parametrize("unit", UNITS)
def test_every_command_a_unit_runs_is_an_evpark_command(unit: str) -> None:
    settings = unit_settings((ROOT / "systemd" / unit).read_text())
    commands = settings["ExecStartPre"] + settings["ExecStart"]
    for command in commands:
        program, *args = command.split()
        assert program == INSTALLED
        # --help is eager: 0 for a command that exists, 2 ("No such command") otherwise
        helped = subprocess.run(
            [EVPARK, *args, "--help"], capture_output=True, text=True, check=False, timeout=60
        )
        assert helped.returncode == 0, f"{command}: {helped.stderr}"


@pytest.mark.parametrize("unit", UNITS)
def test_the_sandbox_keeps_the_exposure_at_2_or_less(unit: str, tmp_path: Path) -> None:
    level, analyzed = exposure(runnable_copy(unit, tmp_path))
    assert level <= 2.0, analyzed.stdout
    assert analyzed.returncode == 0  # --threshold=20 (2.0 on its 0-100 scale) agrees
    assert "Invalid syntax" not in analyzed.stderr, analyzed.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_without_its_sandbox_a_unit_is_exposed(unit: str, tmp_path: Path) -> None:
    # the measure can fail: the same unit without the lines after "# Sandbox" scores badly
    text = (ROOT / "systemd" / unit).read_text()
    bare = text[: text.index("# Sandbox")] + text[text.index("[Install]") :]
    level, analyzed = exposure(runnable_copy(unit, tmp_path, bare))
    assert level > 5.0
    assert analyzed.returncode != 0


def test_the_sysusers_file_creates_the_users_the_units_run_as(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    created = subprocess.run(
        [require_binary("systemd-sysusers"), f"--root={tmp_path}", "-"],
        input=(ROOT / "systemd" / "evpark.sysusers.conf").read_text(),
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    users = {line.split(":")[0] for line in (tmp_path / "etc/passwd").read_text().splitlines()}
    for unit in UNITS:
        settings = unit_settings((ROOT / "systemd" / unit).read_text())
        assert settings["User"][0] in users
        assert settings["Group"] == settings["User"]


def test_the_edge_unit_loads_every_secret_the_edge_reads() -> None:
    settings = unit_settings((ROOT / "systemd" / "evpark-edge.service").read_text())
    loaded = dict(value.split(":", 1) for value in settings["LoadCredential"])
    assert sorted(loaded) == sorted([*TEXT_SECRETS, TLS_KEY])
    assert all(path == f"{CREDENTIALS}/edge/{name}" for name, path in loaded.items())
    # a missing file leaves a blank credential (nothing set), not a unit that fails
    assert sorted(settings["SetCredential"]) == sorted(f"{name}:\\n" for name in loaded)


def _edge_reads(name: str) -> bool:
    charger = re.fullmatch(r"chargers__(.+)__password", name)
    return name in (*TEXT_SECRETS, TLS_KEY) or (
        charger is not None and name == charger_password_name(charger.group(1))
    )


def test_every_credential_the_units_and_docs_load_is_a_secret_the_code_reads() -> None:
    texts = [ROOT / "systemd" / unit for unit in UNITS]
    texts += [ROOT / "docs" / page for page in ("operations.md", "security.md")]
    found = [m.groups() for path in texts for m in _LOAD_CREDENTIAL.finditer(path.read_text())]
    tiers = {path.split("/")[-2] for _, path in found}
    assert tiers == {"edge", "central"}  # the edge's and central's, in their own directories
    for name, path in found:
        assert path == f"{CREDENTIALS}/{path.split('/')[-2]}/{name}"
        if "/edge/" in path:
            assert _edge_reads(name), name
        else:  # central reads a secret setting from a file named after it
            assert name.split("__")[0] in CentralSettings.model_fields, name
