"""A how-to page for administrators, run word for word on the systemd tier.

The page (docs/howto-mariadb-failover.md) is the product here: what an
administrator types on real machines. Its ```sh blocks are taken from the
page, not copied into the harness. Each block's first line says where it runs
(`# on every node`, `# on the first node`, `# on the node running RESOURCE`);
the one `# settings` block shows the site's values, which the harness replaces
with its own, under the same names. A block runs as `bash -e -u`, so a failing
command or an unset name fails the step that runs it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from builder.base.command import Background
from builder.base.errors import InputError

from .node import Node

SETTINGS = "# settings"
_WHERE = re.compile(r"#\s*on\s+(?:(every node)|(the first node)|the node running\s+(\S+))\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")
_EXPORT = re.compile(r"^export\s+(.*)$")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_USE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# What bash sets itself, or a block assigns for its own use.
_SHELL_NAMES = {"PATH", "HOME", "PWD"}


class HowtoError(InputError):
    """The page cannot be run: it names the page, the line, and what is wrong."""

    def __init__(self, page: Path, line: int, problem: str) -> None:
        super().__init__(page, problem, line=line or None)


class Where(Enum):
    EVERY_NODE = "every node"
    FIRST_NODE = "the first node"
    RESOURCE_NODE = "the node running a resource"


@dataclass(frozen=True)
class Block:
    """One ```sh block of the page, as it stands, and where it runs."""

    line: int  # of its first command, 1-based, for the report and errors
    where: Where
    script: str
    resource: str = ""  # for Where.RESOURCE_NODE

    @property
    def title(self) -> str:
        place = f"the node running {self.resource}" if self.resource else self.where.value
        return f"how-to line {self.line} (on {place})"


@dataclass(frozen=True)
class Page:
    path: Path
    settings: tuple[str, ...]  # the names step 1 sets, in order
    blocks: tuple[Block, ...]

    def names_used(self) -> set[str]:
        """Every $NAME the blocks read, but for what they assign themselves."""
        used: set[str] = set()
        for block in self.blocks:
            assigned = {m.group(1) for m in re.finditer(r"(?m)^\s*([A-Za-z_]\w*)=",
                                                        block.script)}
            used |= {n for n in _USE.findall(block.script)} - assigned - _SHELL_NAMES
        return used


def parse(path: Path) -> Page:
    """The page's settings and blocks; one clear error for a block that says nowhere."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise HowtoError(path, 0, f"cannot read the page: {exc.strerror}") from exc
    settings: list[str] = []
    blocks: list[Block] = []
    seen_settings = False
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        info, start = fence.group(1), index + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise HowtoError(path, index + 1, "a code block is not closed")
        index = end + 1
        if info != "sh":
            continue
        body = lines[start:end]
        first = body[0].strip() if body else ""
        if first == SETTINGS:
            if seen_settings:
                raise HowtoError(path, start + 1, "a second '# settings' block")
            seen_settings = True
            settings += _exported_names(path, start, body[1:])
            continue
        where = _WHERE.match(first)
        if not where:
            raise HowtoError(path, start + 1, "an sh block must start with '# settings', "
                             "'# on every node', '# on the first node' or "
                             f"'# on the node running RESOURCE', not {first!r}")
        script = "\n".join(body[1:]) + "\n"
        if not script.strip():
            raise HowtoError(path, start + 1, "an sh block with no command")
        if where.group(1):
            blocks.append(Block(start + 2, Where.EVERY_NODE, script))
        elif where.group(2):
            blocks.append(Block(start + 2, Where.FIRST_NODE, script))
        else:
            blocks.append(Block(start + 2, Where.RESOURCE_NODE, script, where.group(3)))
    if not seen_settings:
        raise HowtoError(path, 0, "no '# settings' block: the page must show the values "
                         "it needs")
    page = Page(path, tuple(settings), tuple(blocks))
    unset = page.names_used() - set(settings)
    if unset:
        raise HowtoError(path, 0, "the commands use names the settings do not set: "
                         + ", ".join(sorted(unset)))
    return page


def _exported_names(path: Path, start: int, body: list[str]) -> list[str]:
    names = []
    for offset, text in enumerate(body):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        export = _EXPORT.match(text)
        if not export:
            raise HowtoError(path, start + 2 + offset,
                             f"the settings block holds only 'export NAME=value': {text!r}")
        names += _ASSIGN.findall(re.sub(r"(['\"]).*?\1", "''", export.group(1)))
    return names


def check_values(page: Page, values: Mapping[str, str]) -> None:
    """The harness must give exactly the names the page's settings set."""
    missing = [n for n in page.settings if n not in values]
    extra = sorted(set(values) - set(page.settings))
    if missing or extra:
        raise HowtoError(page.path, 0, "the harness's values do not match the page's "
                         f"settings: missing {missing or 'none'}, not on the page "
                         f"{extra or 'none'}")


def run_block(block: Block, node: Node, values: Mapping[str, str], timeout: float) -> None:
    """The block as it stands, in bash on `node`, with the site's values in its environment."""
    env = [f"{name}={value}" for name, value in values.items()]
    node.run(["env", *env, "bash", "-e", "-u", "-c", block.script], timeout=timeout)


def nodes_for(block: Block, nodes: list[Node],
              locate: Callable[[str], str | None]) -> list[Node]:
    """Where the block runs: every node, the first, or the one `locate(resource)` names."""
    if block.where is Where.EVERY_NODE:
        return list(nodes)
    if block.where is Where.FIRST_NODE:
        return nodes[:1]
    owner = locate(block.resource)
    match = [n for n in nodes if n.name == owner]
    if not match:
        raise HowtoError(Path(block.title), block.line,
                         f"no node runs {block.resource} (crm_resource says {owner!r})")
    return match


def locate_resource(node: Node, resource: str) -> str | None:
    """`crm_resource --locate --quiet`: the node `resource` runs on, as `node` sees it."""
    result = node.run(["crm_resource", "--locate", "--resource", resource, "--quiet"],
                      check=False, timeout=30)
    names = result.stdout.split()
    return names[0] if result.returncode == 0 and names else None


class RepositoryServer:
    """The published repository served on the nodes' network (in the switch's
    namespace, at its bridge address), as a site serves its mirror: the page's
    `apt-get update` on a node fetches from it."""

    def __init__(self, repo: Path, switch_pid: int, address: str, port: int,
                 log_path: Path) -> None:
        self.url = f"http://{address}:{port}"
        self.log_path = log_path
        self.proc = Background(
            ["nsenter", f"--net=/proc/{switch_pid}/ns/net", "--", "python3", "-u", "-m",
             "http.server", "--bind", address, "--directory", str(repo), str(port)],
            log_path)

    def wait(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.running():
                break
            if self.log_path.exists() and "Serving HTTP" in self.log_path.read_text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the repository server did not start, see {self.log_path}")

    def stop(self) -> None:
        self.proc.stop()


def harness_values(nodes: list[Node], vip: str, repo_url: str, fence_socket: str,
                   shared_mount: str, cluster_name: str, hacluster_password: str,
                   database: tuple[str, str, str]) -> dict[str, str]:
    """The harness's answers to the page's settings, under the page's names.

    `database`: the application's database, user and password, which the client
    then uses through the VIP.
    """
    if len(nodes) != 3:
        raise ValueError(f"the how-to is written for three machines, not {len(nodes)}")
    values: dict[str, str] = {}
    for index, node in enumerate(nodes, start=1):
        values[f"NODE{index}"], values[f"NODE{index}_ADDR"] = node.name, node.address
    app_db, app_user, app_password = database
    values.update({
        "CLUSTER_NAME": cluster_name, "VIP": vip, "VIP_PREFIX": "24", "REPO_URL": repo_url,
        "HACLUSTER_PASSWORD": hacluster_password,
        # The harness's agent powers a node off and on through the fence controller.
        "FENCE_AGENT": "fence_nsnode", "FENCE_OPTIONS": f"socket={fence_socket}",
        # The shared disk is a host directory every node has at shared_mount.
        "DB_DEVICE": f"{shared_mount}/db", "DB_FSTYPE": "none", "DB_FSOPTIONS": "bind",
        "APP_DB": app_db, "APP_USER": app_user, "APP_PASSWORD": app_password,
    })
    return values
