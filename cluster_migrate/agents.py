"""The agent table: rgmanager resource types and fence devices -> Pacemaker agents, as data.

A rule names the Pacemaker agent, renames rgmanager attributes to the agent's
parameters, and says why the attributes it drops are dropped, so that the report
can quote it. Types not in RESOURCE_AGENTS have no counterpart: convert.py reports
them and leaves a stopped placeholder instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# rgmanager's per-parent child rules, from each agent's metadata
# (<special tag="rgmanager"><child type=... start=... forbid=.../>): type -> start level,
# 0 for a type the parent names without a level, None for a type it forbids. rgmanager
# starts the children with a level by level, then the others in the order written; a
# parent with no rules (script, ip, netfs, a database...) keeps the written order.
CHILD_RULES: dict[str, dict[str, int | None]] = {
    "service": {"lvm": 1, "fs": 2, "clusterfs": 3, "netfs": 4, "nfsexport": 5,
                "nfsclient": 6, "ip": 7, "smb": 8, "script": 9},
    "fs": {"fs": 1, "clusterfs": 1, "nfsexport": 3},
    "clusterfs": {"fs": 1, "clusterfs": 1, "nfsexport": 3},
    "nfsserver": {"nfsexport": None, "nfsserver": None, "nfsclient": 1, "ip": 2},
    "nfsexport": {"nfsexport": None, "nfsclient": 0},
    "netfs": {"nfsexport": None, "nfsclient": None},
    "ip": {"nfsclient": None, "nfsexport": None},
    "bind-mount": {"nfsexport": None, "nfsclient": 0},
}
# Types whose metadata says <attributes maxinstances="1"/>: rgmanager loads such a
# resource into one service only and skips every later reference ("Max references
# exceeded"), so it never ran twice.
MAX_ONE_INSTANCE = {"fs", "ip", "lvm", "nfsserver", "oracledb", "vm", "drbd"}

# Attributes convert.py handles itself (recovery policy, names): never reported as dropped.
STRUCTURAL = {"name", "ref", "__independent_subtree", "__max_failures", "__failure_expire_time",
              "__max_restarts", "__restart_expire_time", "__enforce_timeouts"}

BOOL_TRUE = ("1", "yes", "true", "on")


@dataclass(frozen=True)
class AgentRule:
    cls: str
    provider: str | None
    type: str
    # rgmanager attribute -> Pacemaker parameter
    params: dict[str, str] = field(default_factory=dict)
    # rgmanager attribute -> why it is not carried over
    dropped: dict[str, str] = field(default_factory=dict)
    # parameters always set (e.g. a mode rgmanager implied)
    fixed: dict[str, str] = field(default_factory=dict)
    # agent parameters with no rgmanager source that the admin must fill in
    required: tuple[str, ...] = ()
    # attributes whose value is a boolean rgmanager wrote as 0/1
    booleans: tuple[str, ...] = ()
    monitor: str = "30s"
    timeouts: dict[str, str] = field(default_factory=dict)
    # attribute (seconds) -> operation whose timeout it bounds
    wait_timeouts: dict[str, str] = field(default_factory=dict)
    # copy attributes with the same name that are not otherwise listed
    passthrough: tuple[str, ...] = ()


_NFSLOCK = "NFS lock recovery is handled by the nfsnotify agent in Pacemaker; add it if needed"

RESOURCE_AGENTS: dict[str, AgentRule] = {
    "ip": AgentRule(
        "ocf", "heartbeat", "IPaddr2",
        params={"prefer_interface": "nic"},
        dropped={"monitor_link": "IPaddr2 checks the interface on every monitor",
                 "sleeptime": "IPaddr2 has no post-start sleep",
                 "disable_rdisc": "no router discovery daemon is driven by IPaddr2",
                 "family": "the family follows from the address"},
        monitor="10s", timeouts={"start": "20s", "stop": "20s"}),
    "fs": AgentRule(
        "ocf", "heartbeat", "Filesystem",
        params={"device": "device", "mountpoint": "directory", "fstype": "fstype",
                "options": "options", "force_unmount": "force_unmount"},
        dropped={"self_fence": "use on-fail=fence on the stop operation if still wanted",
                 "nfslock": _NFSLOCK, "nfsrestart": "not supported by Filesystem",
                 "quick_status": "Filesystem's monitor is always quick at depth 0",
                 "fsid": "only used by NFS exports below it (inherited there)",
                 "force_fsck": "Filesystem runs fsck itself by default (run_fsck=auto)",
                 "use_findmnt": "not needed", "no_unmount": "not supported by Filesystem"},
        booleans=("force_unmount",), monitor="20s",
        timeouts={"monitor": "40s", "start": "60s", "stop": "60s"}),
    "netfs": AgentRule(
        "ocf", "heartbeat", "Filesystem",
        params={"mountpoint": "directory", "fstype": "fstype", "options": "options",
                "force_unmount": "force_unmount"},
        dropped={"no_unmount": "not supported by Filesystem", "nfslock": _NFSLOCK,
                 "use_findmnt": "not needed", "self_fence": "use on-fail=fence if still wanted"},
        booleans=("force_unmount",), monitor="20s",
        timeouts={"monitor": "40s", "start": "60s", "stop": "60s"}),
    "clusterfs": AgentRule(
        "ocf", "heartbeat", "Filesystem",
        params={"device": "device", "mountpoint": "directory", "fstype": "fstype",
                "options": "options", "force_unmount": "force_unmount"},
        dropped={"self_fence": "use on-fail=fence if still wanted", "nfslock": _NFSLOCK,
                 "fsid": "only used by NFS exports below it (inherited there)",
                 "nfsrestart": "not supported by Filesystem"},
        booleans=("force_unmount",), monitor="20s",
        timeouts={"monitor": "40s", "start": "60s", "stop": "60s"}),
    "lvm": AgentRule(
        "ocf", "heartbeat", "LVM-activate",
        params={"vg_name": "vgname", "lv_name": "lvname"},
        dropped={"self_fence": "use on-fail=fence if still wanted",
                 "nfslock": _NFSLOCK},
        fixed={"vg_access_mode": "system_id", "activation_mode": "exclusive"},
        timeouts={"start": "90s", "stop": "90s"}),
    "mysql": AgentRule(
        "ocf", "heartbeat", "mysql",
        params={"config_file": "config", "mysqld_options": "additional_parameters"},
        dropped={"listen_address": "set bind-address in the MySQL configuration file"},
        wait_timeouts={"startup_wait": "start", "shutdown_wait": "stop"},
        timeouts={"start": "120s", "stop": "120s"}),
    "postgres-8": AgentRule(
        "ocf", "heartbeat", "pgsql",
        params={"config_file": "config", "postmaster_user": "pgdba",
                "postmaster_options": "start_opt"},
        wait_timeouts={"startup_wait": "start", "shutdown_wait": "stop"},
        timeouts={"start": "120s", "stop": "120s"}),
    "apache": AgentRule(
        "ocf", "heartbeat", "apache",
        params={"httpd_options": "options"},
        dropped={"server_root": "folded into configfile"},
        wait_timeouts={"shutdown_wait": "stop"},
        timeouts={"start": "40s", "stop": "60s"}),
    "tomcat-6": AgentRule(
        "ocf", "heartbeat", "tomcat",
        params={"catalina_options": "catalina_opts"},
        dropped={"config_file": "the tomcat agent takes catalina_home/java_home instead"},
        required=("catalina_home", "java_home"),
        wait_timeouts={"shutdown_wait": "stop"},
        timeouts={"start": "120s", "stop": "120s"}),
    "nfsserver": AgentRule(
        "ocf", "heartbeat", "nfsserver",
        dropped={"nfspath": "folded into nfs_shared_infodir", "path": "folded into "
                 "nfs_shared_infodir"},
        timeouts={"start": "40s", "stop": "20s"}),
    "nfsclient": AgentRule(
        "ocf", "heartbeat", "exportfs",
        params={"target": "clientspec", "options": "options", "path": "directory",
                "fsid": "fsid"},
        dropped={"allow_recover": "exportfs re-exports on every start",
                 "service_name": "not needed", "use_cache": "not needed",
                 "nfs_client_cache": "not needed"},
        timeouts={"start": "40s", "stop": "120s"}),
    "named": AgentRule(
        "ocf", "heartbeat", "named",
        params={"config_file": "named_config", "named_options": "named_options"},
        dropped={"named_working_dir": "set 'directory' in named.conf",
                 "named_sdb": "not supported by the named agent"},
        wait_timeouts={"shutdown_wait": "stop"}),
    "samba": AgentRule(
        "systemd", None, "smbd",
        dropped={"config_file": "merge the per-service smb.conf into /etc/samba/smb.conf",
                 "smbd_options": "set in the smbd unit", "nmbd_options": "set in the nmbd unit"},
        wait_timeouts={"shutdown_wait": "stop"}),
    "smb": AgentRule(
        "systemd", None, "smbd",
        dropped={"workgroup": "set in /etc/samba/smb.conf"}),
    "SAPInstance": AgentRule(
        "ocf", "heartbeat", "SAPInstance",
        passthrough=("InstanceName", "DIR_EXECUTABLE", "DIR_PROFILE", "START_PROFILE",
                     "START_WAITTIME", "AUTOMATIC_RECOVER", "MONITOR_SERVICES",
                     "ERS_InstanceName", "ERS_START_PROFILE", "PRE_START_USEREXIT",
                     "POST_START_USEREXIT", "PRE_STOP_USEREXIT", "POST_STOP_USEREXIT",
                     "SHUTDOWN_METHOD"),
        monitor="120s", timeouts={"start": "240s", "stop": "240s"}),
    "SAPDatabase": AgentRule(
        "ocf", "heartbeat", "SAPDatabase",
        passthrough=("SID", "DIR_EXECUTABLE", "DBTYPE", "NETSERVICENAME", "DBJ2EE_ONLY",
                     "JAVA_HOME", "STRICT_MONITORING", "AUTOMATIC_RECOVER", "DIR_BOOTSTRAP",
                     "DIR_SECSTORE", "DB_JARS", "PRE_START_USEREXIT", "POST_START_USEREXIT",
                     "PRE_STOP_USEREXIT", "POST_STOP_USEREXIT"),
        monitor="120s", timeouts={"start": "1800s", "stop": "1800s"}),
    "oracledb": AgentRule(
        "ocf", "heartbeat", "oracle",
        params={"user": "user", "home": "home"},
        dropped={"type": "the oracle agent manages the instance only; add oralsnr for the "
                 "listener", "vhost": "not supported", "listener_name": "add an oralsnr "
                 "resource for the listener"},
        timeouts={"start": "120s", "stop": "120s"}),
    "orainstance": AgentRule(
        "ocf", "heartbeat", "oracle",
        params={"user": "user", "home": "home"},
        dropped={"listeners": "add oralsnr resources for the listeners"},
        timeouts={"start": "120s", "stop": "120s"}),
    "oralistener": AgentRule(
        "ocf", "heartbeat", "oralsnr",
        params={"user": "user", "home": "home"}),
    "openldap": AgentRule(
        "ocf", "heartbeat", "slapd",
        params={"config_file": "config", "url_list": "services"},
        dropped={"slapd_options": "set in the slapd defaults file"},
        wait_timeouts={"shutdown_wait": "stop"}),
    "vm": AgentRule(
        "ocf", "heartbeat", "VirtualDomain",
        params={"hypervisor_uri": "hypervisor", "migration_uri": "migration_transport"},
        dropped={"domain": "turned into location constraints",
                 "autostart": "turned into target-role", "exclusive": "turned into "
                 "anti-colocation", "recovery": "turned into failure handling",
                 "max_restarts": "turned into migration-threshold",
                 "restart_expire_time": "turned into failure-timeout",
                 "path": "folded into config", "use_virsh": "VirtualDomain always uses libvirt",
                 "xmlfile": "folded into config", "migrate": "turned into allow-migrate",
                 "snapshot": "not supported", "depend": "turned into constraints",
                 "depend_mode": "turned into constraints", "hypervisor": "libvirt picks it",
                 "status_program": "not supported", "priority": "not used by Pacemaker",
                 "migration_mapping": "use migration_network_suffix in VirtualDomain"},
        monitor="30s", timeouts={"start": "120s", "stop": "120s", "migrate_to": "120s",
                                 "migrate_from": "120s"}),
}
# Aliases rgmanager shipped under other names.
RESOURCE_AGENTS["tomcat-5"] = RESOURCE_AGENTS["tomcat-6"]
RESOURCE_AGENTS["tomcat-7"] = RESOURCE_AGENTS["tomcat-6"]
RESOURCE_AGENTS["postgres"] = RESOURCE_AGENTS["postgres-8"]

# Script resources pointing at these init scripts become systemd units of today's name.
SYSTEMD_UNITS = {
    "httpd": "apache2", "apache2": "apache2", "mysqld": "mariadb", "mysql": "mariadb",
    "mariadb": "mariadb", "postgresql": "postgresql", "smb": "smbd", "nmb": "nmbd",
    "nfs": "nfs-server", "nfs-server": "nfs-server", "named": "named", "bind9": "named",
    "sshd": "ssh", "crond": "cron", "squid": "squid", "vsftpd": "vsftpd",
    "postfix": "postfix", "sendmail": "sendmail", "slapd": "slapd", "xinetd": "xinetd",
    "tomcat6": "tomcat10", "tomcat": "tomcat10", "dhcpd": "isc-dhcp-server",
    "nginx": "nginx", "haproxy": "haproxy", "rsyslog": "rsyslog", "cups": "cups",
    "snmpd": "snmpd", "ntpd": "ntpsec", "libvirtd": "libvirtd",
}
# Init scripts of the old cluster stack itself: replaced by Pacemaker clones, not resources.
STACK_SCRIPTS = {"clvmd", "gfs2", "gfs", "cman", "rgmanager", "qdiskd", "cmirror"}


# ---- fencing ----------------------------------------------------------------------------

# Parameter names fence agents accepted in RHEL 5/6 -> today's names.
FENCE_PARAM_RENAMES = {
    "ipaddr": "ip", "login": "username", "passwd": "password", "passwd_script":
    "password_script", "port": "plug", "secure": "ssh", "identity_file": "identity_file",
    "ipport": "ipport", "login_eol_lf": "login_eol_lf", "cmd_prompt": "cmd_prompt",
    "inet4_only": "inet4_only", "inet6_only": "inet6_only", "uuid": "uuid",
    "nodename": "plug",
}
# Attributes that are the fencing target and therefore go into pcmk_host_map instead.
FENCE_PORT_ATTRS = ("port", "plug", "nodename")
# rgmanager-era fence attributes with no meaning for Pacemaker's fencer.
FENCE_DROPPED = {
    "option": "Pacemaker chooses the action; set pcmk_reboot_action if 'off' is wanted",
    "action": "Pacemaker chooses the action; set pcmk_reboot_action if 'off' is wanted",
}
# Agents that no longer exist, with the reason.
FENCE_GONE = {
    "fence_manual": "manual fencing was removed; configure a real fence device (or SBD)",
    "fence_ack_manual": "manual fencing was removed; use 'stonith_admin --confirm'",
}
# Agents whose per-node target is the guest's domain name: Pacemaker passes the node
# name as `port` unless pcmk_host_map says otherwise (clufter maps domain -> port too).
FENCE_DOMAIN_AGENTS = {"fence_xvm", "fence_virt"}
# cman's redirect of fencing into Pacemaker (cman + Pacemaker clusters): not a device.
FENCE_REDIRECT = "fence_pcmk"
# Agents that need unfencing (storage-based fencing).
UNFENCE_AGENTS = {"fence_scsi", "fence_mpath"}


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in BOOL_TRUE


def service_for_script(path: str) -> tuple[str, str | None, str]:
    """An rgmanager <script file=...> -> (class, provider, type) for Pacemaker."""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    if base in SYSTEMD_UNITS:
        return ("systemd", None, SYSTEMD_UNITS[base])
    if path.startswith(("/etc/init.d/", "/etc/rc.d/init.d/")):
        return ("lsb", None, base)
    # Pacemaker's lsb class also runs a script given by its absolute path.
    return ("lsb", None, path)
