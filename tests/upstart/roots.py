"""A trixie root with the cluster stack installed, for running daemons the Upstart way.

Built by `builder.buildroot.roots` (mmdebstrap in unshare mode, no root
privileges inside) and kept as a tarball under the test cache, keyed by what
it installs and by trixie's verified Release, so point releases of trixie
reach the fork check; each test session unpacks it as root with numeric ids,
which a directory target of mmdebstrap would get wrong.
"""

from __future__ import annotations

from pathlib import Path

from builder.base.command import Runner
from builder.buildroot import roots

from .debcache import CACHE

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
# The daemons of upstart/jobs.yaml plus what their jobs and the harness run:
# strace (the tracer), iproute2 (veth for keepalived), procps (ps), mount (dlm's pre-start).
PACKAGES = [
    "corosync", "pacemaker", "pacemaker-cli-utils", "keepalived", "dlm-controld", "sbd",
    "corosync-qnetd", "corosync-qdevice", "drbd-utils", "ocfs2-tools",
    "strace", "iproute2", "procps", "mount",
]


def root_spec(packages: list[str] = PACKAGES, suite: str = SUITE) -> roots.RootfsSpec:
    return roots.RootfsSpec(name=f"{suite}-forkcheck", suite=suite,
                            sources=(roots.Source(f"deb {MIRROR} {suite} main"),),
                            variant="apt", packages=tuple(packages))


def root_tarball(packages: list[str] = PACKAGES, suite: str = SUITE) -> Path:
    return roots.build(root_spec(packages, suite), CACHE / "upstart", Runner(),
                       timeout=900, keep=2).path


def unpack(tarball: Path, dest: Path) -> Path:
    return roots.unpack(tarball, dest, Runner())


# --- minimal valid configurations for the daemons (one node, test network) ---

COROSYNC_CONF = """\
totem {
    version: 2
    cluster_name: forkcheck
    crypto_cipher: none
    crypto_hash: none
    transport: knet
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: node1
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
%(device)s}
logging {
    to_stderr: yes
    to_syslog: no
    to_logfile: no
}
"""
QDEVICE = """\
    device {
        model: net
        votes: 1
        net {
            host: 127.0.0.1
            algorithm: lms
            tls: off
        }
    }
"""
KEEPALIVED_CONF = """\
global_defs {
    router_id forkcheck
}
vrrp_instance VI_1 {
    state BACKUP
    interface cs0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.10/32
    }
}
"""
# keepalived refuses VRRP on loopback: give it a veth pair.  It exists only in
# the test's own network namespace, with a documentation-range address.
VETH = ["ip link add cs0 type veth peer name cs1", "ip link set cs0 up", "ip link set cs1 up",
        "ip addr add 192.0.2.1/24 dev cs0"]
