"""The Icinga 2 CheckCommand we ship, and the README's service for it, as Icinga 2 reads them.

`icinga2 daemon -C` (Debian's icinga2-bin) validates the configuration the way the
daemon loads it: the ITL, our `plugins-contrib.d/pacemaker.conf` where the package
installs it, and the README's `apply Service` on a host with an agent zone, word for
word.  A misspelt argument attribute or a service that cannot run on the node's agent
fails here, not on an administrator's monitoring server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMAND = REPO / "monitoring" / "icinga2" / "pacemaker.conf"

# What an agent set-up has around the README's service: the master and the node as
# endpoints and zones, the host in the master's zone (as if in zones.d/master).
SCAFFOLD = """\
include <itl>
include <plugins>
include "{command}"
const PluginDir = "/usr/lib/nagios/plugins"
const NodeName = "master"
object Endpoint "master" {{ }}
object Zone "master" {{ endpoints = [ "master" ] }}
object Endpoint "node1" {{ }}
object Zone "node1" {{ endpoints = [ "node1" ]; parent = "master" }}
object Host "node1" {{
  check_command = "dummy"
  zone = "master"
  vars.pacemaker = true
}}
"""


def readme_service() -> str:
    """The Icinga 2 block of the README's monitoring section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^Icinga 2 \(the agent.*?```\n(.*?)```", text, re.S | re.M)
    if match is None:
        pytest.fail("README.md: no Icinga 2 service block after 'Icinga 2 (the agent'")
    return match.group(1)


def validate(tmp_path: Path, command: Path, service: str) -> subprocess.CompletedProcess:
    exe = shutil.which("icinga2")
    if exe is None:
        pytest.fail("icinga2 is not installed (icinga2-bin is in the Makefile's APT_PACKAGES)")
    dirs = {name: tmp_path / name.lower() for name in
            ("DataDir", "LogDir", "CacheDir", "SpoolDir", "InitRunDir")}
    for path in dirs.values():
        path.mkdir()
    conf = tmp_path / "icinga2.conf"
    conf.write_text(SCAFFOLD.format(command=command) + service, encoding="utf-8")
    # As root, icinga2 would drop to the nagios user, who cannot write tmp_path.
    defines = [f"-D{name}={path}" for name, path in dirs.items()]
    return subprocess.run(
        [exe, "daemon", "-C", "-c", str(conf), *defines,
         "-DRunAsUser=root", "-DRunAsGroup=root"],
        capture_output=True, text=True, timeout=120, check=False)


def test_command_and_readme_service_validate(tmp_path: Path) -> None:
    result = validate(tmp_path, COMMAND, readme_service())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Instantiated 1 Service." in result.stdout, result.stdout
    assert "Finished validating the configuration" in result.stdout


def test_a_misspelt_argument_attribute_is_refused(tmp_path: Path) -> None:
    """The validation above can fail: one wrong attribute name in the command."""
    broken = tmp_path / "pacemaker.conf"
    text = COMMAND.read_text(encoding="utf-8")
    assert '\t\t\trepeat_key = true\n' in text
    broken.write_text(text.replace("\t\t\trepeat_key = true\n", "\t\t\trepeat_keys = true\n", 1),
                      encoding="utf-8")
    result = validate(tmp_path, broken, readme_service())
    assert result.returncode != 0
    assert "Invalid attribute: repeat_keys" in result.stdout, result.stdout


def test_a_service_without_the_agent_zone_is_refused(tmp_path: Path) -> None:
    """command_endpoint needs the node's endpoint: the README's service names one."""
    service = readme_service()
    assert "command_endpoint = host.name" in service
    result = validate(tmp_path, COMMAND,
                      service.replace("command_endpoint = host.name",
                                      'command_endpoint = "elsewhere"'))
    assert result.returncode != 0
    assert "'elsewhere' of type 'Endpoint' does not exist" in result.stdout, result.stdout
