"""The systemd tier's bootstrap, the administrator's way (pure parts).

The command lines an administrator types to create the cluster with pcs or
crmsh, and the gaps of an archive that keep those from working out of the
box: each gap the node root still has is closed before the first boot by a
named workaround that the report lists, never silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The password the administrator gives the hacluster user for `pcs host auth`; it only
# exists inside the harness's namespaces.
HACLUSTER_PASSWORD = "clusterstack-test"
PCSD_WORKERS = 2  # as packaging/ubuntu-cluster/templates/pcsd-workers.conf.j2
WORKAROUND_DROPIN = "clusterstack-workaround.conf"


def pcs_auth_argv(members: Sequence[tuple[str, str]],
                  password: str = HACLUSTER_PASSWORD) -> list[str]:
    """`pcs host auth node1 addr=A node2 addr=B -u hacluster -p PASSWORD`."""
    argv = ["pcs", "host", "auth"]
    for name, address in members:
        argv += [name, f"addr={address}"]
    return [*argv, "-u", "hacluster", "-p", password]


def pcs_setup_argv(cluster_name: str, members: Sequence[tuple[str, str]],
                   token_ms: int, wait_s: int = 120) -> list[str]:
    """`pcs cluster setup`: corosync.conf and the keys made and sent by pcs, the cluster
    enabled at boot (a fenced node that reboots rejoins) and started."""
    argv = ["pcs", "cluster", "setup", cluster_name]
    for name, address in members:
        argv += [name, f"addr={address}"]
    return [*argv, "totem", f"token={token_ms}", "--enable", "--start", f"--wait={wait_s}"]


def crm_init_argv(cluster_name: str, interface: str = "eth0") -> list[str]:
    """`crm cluster init -y`: corosync.conf, keys and the services, on the first node."""
    return ["crm", "cluster", "init", "-y", "-n", cluster_name, "-i", interface]


def crm_join_argv(seed: str, interface: str = "eth0") -> list[str]:
    """`crm cluster join -y -c SEED`: the node fetches the configuration over ssh."""
    return ["crm", "cluster", "join", "-y", "-c", seed, "-i", interface]


def parse_failed_units(text: str) -> list[str]:
    """Unit names from `systemctl --failed --plain --no-legend` (a leading '●' tolerated)."""
    units = []
    for line in text.splitlines():
        words = line.replace("\u25cf", " ").split()
        if words and re.search(r"\.(service|socket|mount|target|timer|path|scope)$", words[0]):
            units.append(words[0])
    return units


@dataclass(frozen=True)
class Gap:
    """Something the archive should do itself, and the workaround the harness applies instead."""

    name: str
    problem: str
    workaround: str
    fixed_in: str  # where our packaging fixes it, or "not yet"
    remove: tuple[str, ...] = ()  # paths in the node root (whiteouts in its upper layer)
    write: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # path, content
    dirs: tuple[tuple[str, str, int], ...] = ()  # path, owner (user name), mode
    links: tuple[tuple[str, str], ...] = ()  # path, target of a symbolic link

    def describe(self) -> str:
        return f"{self.name}: {self.problem}; workaround: {self.workaround} ({self.fixed_in})"


COROSYNC_CONF = "etc/corosync/corosync.conf"
CONDITION_DROPIN = ("[Unit]\n"
                    "# clusterstack workaround: no cluster before the bootstrap tool wrote one\n"
                    "ConditionPathExists=/etc/corosync/corosync.conf\n")
SBD_REQUIRED_BY = ("corosync.service", "pacemaker.service", "dlm.service")


def _read(root: Path, rel: str) -> str:
    try:
        return (root / rel).read_text(errors="replace")
    except OSError:
        return ""


def is_example_corosync_conf(text: str) -> bool:
    """Debian's corosync.conf as shipped: the example made valid, one node on 127.0.0.1."""
    return "cluster_name: debian" in text and re.search(r"ring0_addr:\s*127\.0\.0\.1", text) \
        is not None


def archive_gaps(root: Path) -> list[Gap]:
    """What keeps the node root from being bootstrapped out of the box by pcs or crmsh."""
    gaps = []
    if is_example_corosync_conf(_read(root, COROSYNC_CONF)):
        gaps.append(Gap(
            "corosync-example-config",
            "corosync ships Debian's example as the live /etc/corosync/corosync.conf "
            "(node1 on 127.0.0.1): it is started at boot, and `pcs host auth` then "
            "writes no known-hosts",
            "removed before the first boot, and corosync.service and pacemaker.service "
            "given ConditionPathExists=/etc/corosync/corosync.conf by a drop-in",
            "packaging/corosync and patches/corosync+pacemaker; needs a rebuild of "
            "corosync and pacemaker",
            remove=(COROSYNC_CONF,),
            write=((f"etc/systemd/system/corosync.service.d/{WORKAROUND_DROPIN}",
                    CONDITION_DROPIN),
                   (f"etc/systemd/system/pacemaker.service.d/{WORKAROUND_DROPIN}",
                    CONDITION_DROPIN))))
    requires = [f"etc/systemd/system/{unit}.requires/sbd.service" for unit in SBD_REQUIRED_BY]
    sbd_default = re.sub(r"(?m)^\s*#.*$", "", _read(root, "etc/default/sbd"))
    if (any((root / rel).is_symlink() for rel in requires) and "SBD_DEVICE=" not in sbd_default
            and not (root / SBD_DROPIN).exists()):
        gaps.append(Gap(
            "sbd-without-watchdog",
            "sbd (pulled in by fence-agents-sbd) is enabled as RequiredBy corosync and "
            "pacemaker; with no watchdog its start times out after 90 s and pacemaker, "
            "ordered after it, never starts",
            "a drop-in with ConditionPathExists=/dev/watchdog (what ubuntu-cluster ships)",
            "packaging/ubuntu-cluster; needs a rebuild of ubuntu-cluster",
            write=((f"etc/systemd/system/sbd.service.d/{WORKAROUND_DROPIN}",
                    "[Unit]\nConditionPathExists=/dev/watchdog\n"),)))
    default_pcsd = _read(root, "etc/default/pcsd")
    if default_pcsd and not re.search(r"(?m)^\s*PCSD_WORKER_COUNT=", default_pcsd) \
            and not (root / PCSD_DROPIN).exists():
        gaps.append(Gap(
            "pcsd-workers",
            "pcsd starts 10 worker processes (~500 MiB PSS per node)",
            f"PCSD_WORKER_COUNT={PCSD_WORKERS} by a drop-in (what ubuntu-cluster ships)",
            "packaging/ubuntu-cluster; needs a rebuild of ubuntu-cluster",
            write=((f"etc/systemd/system/pcsd.service.d/{WORKAROUND_DROPIN}",
                    f"[Service]\nEnvironment=PCSD_WORKER_COUNT={PCSD_WORKERS}\n"),)))
    owner = _owner_uid(root, "var/lib/pacemaker")
    hacluster = _passwd_uid(root, "hacluster")
    if (root / "usr/sbin/crm").exists() and hacluster is not None and owner != hacluster \
            and not (root / "var/lib/pacemaker/.ssh").is_dir() \
            and not crmsh_makes_ssh_dir(_read(root, CRMSH_SSH_KEY)):
        gaps.append(Gap(
            "crmsh-hacluster-ssh",
            "crmsh's `crm cluster init` makes an ssh key for hacluster in its home "
            "/var/lib/pacemaker, which Debian's pacemaker-common leaves owned by root: "
            "'Could not create directory /var/lib/pacemaker/.ssh (Permission denied)'",
            "/var/lib/pacemaker/.ssh made, owned by hacluster, mode 0700",
            CRMSH_FIXED_IN,
            dirs=(("var/lib/pacemaker/.ssh", "hacluster", 0o700),)))
    if crmsh_csync2_paths_differ(_read(root, CRMSH_BOOTSTRAP)):
        gaps.append(Gap(
            "crmsh-csync2-paths",
            "Debian's crmsh 5.0.0~rc1 writes /etc/csync2.cfg and /etc/csync2.key_hagroup, "
            "but `crm cluster join` copies /etc/csync2/csync2.cfg and "
            "/etc/csync2/key_hagroup from the seed node (and the config names that key): "
            "'Failed to read root@node1//etc/csync2/csync2.cfg'",
            "/etc/csync2/csync2.cfg and /etc/csync2/key_hagroup made symbolic links to "
            "the Debian paths",
            CRMSH_FIXED_IN,
            links=(("etc/csync2/csync2.cfg", "/etc/csync2.cfg"),
                   ("etc/csync2/key_hagroup", "/etc/csync2.key_hagroup"))))
    return gaps


CRMSH_BOOTSTRAP = "usr/lib/python3/dist-packages/crmsh/bootstrap.py"
CRMSH_SSH_KEY = "usr/lib/python3/dist-packages/crmsh/ssh_key.py"
CRMSH_FIXED_IN = "packaging/crmsh + patches/crmsh; needs a rebuild of crmsh"


def crmsh_makes_ssh_dir(ssh_key_py: str) -> bool:
    """Whether crmsh's ssh_key.py creates a user's ~/.ssh as root before making its key
    pair (patches/crmsh/0002-ssh-dir-for-hacluster.patch); Debian's does not."""
    return "def _ensure_ssh_dir_for_user(" in ssh_key_py


def crmsh_csync2_paths_differ(bootstrap_py: str) -> bool:
    """Whether crmsh's bootstrap.py writes csync2's files at Debian's paths but has the
    join copy SUSE's (Debian's 5.0.0~rc1); patches/crmsh/0003 makes the join copy
    CSYNC2_CFG and CSYNC2_KEY, and SUSE's paths are then named nowhere."""
    return 'CSYNC2_CFG = "/etc/csync2.cfg"' in bootstrap_py \
        and '"/etc/csync2/csync2.cfg"' in bootstrap_py


def _passwd_uid(root: Path, user: str) -> int | None:
    for line in _read(root, "etc/passwd").splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == user:
            return int(fields[2])
    return None


def _owner_uid(root: Path, rel: str) -> int | None:
    try:
        return (root / rel).stat().st_uid
    except OSError:
        return None


# Where our ubuntu-cluster ships its defaults for imported packages' units.
PCSD_DROPIN = "usr/lib/systemd/system/pcsd.service.d/clusterstack.conf"
SBD_DROPIN = "usr/lib/systemd/system/sbd.service.d/clusterstack.conf"
