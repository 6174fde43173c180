"""Profiles: which base archive, suite, init system and task style a build targets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.base import datafile
from builder.base.errors import InputError


@dataclass(frozen=True)
class Archive:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    keyring: Path


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    vendor: str
    suite: str
    archives: tuple[Archive, ...]
    components: tuple[str, ...]
    architectures: tuple[str, ...]
    init: str
    runlevel_stop: str
    version_suffix: str
    task_mode: str
    task_section: str
    reachable: bool
    chroot_max_age_days: float
    origin: str
    label: str
    path: Path
    # Days a published Release stays valid (its Valid-Until); 0: forever.
    valid_until_days: float = 7.0

    @property
    def arch(self) -> str:
        return self.architectures[0]

    @property
    def mirror(self) -> str:
        """The primary archive: where the base system and build chroots come from."""
        return self.archives[0].uri

    def template_context(self) -> dict[str, object]:
        return {
            "name": self.name, "vendor": self.vendor, "suite": self.suite,
            "init": self.init, "runlevel_stop": self.runlevel_stop,
            "version_suffix": self.version_suffix, "task_mode": self.task_mode,
            "task_section": self.task_section, "architectures": list(self.architectures),
        }


def profile_dir(stack_dir: Path) -> Path:
    return stack_dir / "packaging" / "profiles"


def available(stack_dir: Path) -> list[str]:
    return sorted(p.stem for p in profile_dir(stack_dir).glob("*.yaml"))


def load(stack_dir: Path, name: str, checked: datafile.Checked | None = None) -> Profile:
    path = profile_dir(stack_dir) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available(stack_dir)) or "none"
        raise InputError(path, f"no such profile '{name}' (known: {known})")
    data = datafile.load(path, "profile", checked)
    if data["name"] != name:
        raise InputError(path, f"name '{data['name']}' does not match the file name", key="name")
    tasks = data["tasks"]
    return Profile(
        name=name,
        description=data.get("description", name),
        vendor=data["vendor"],
        suite=data["suite"],
        archives=tuple(
            Archive(a["uri"].rstrip("/"), tuple(a["suites"]), tuple(a["components"]),
                    Path(a["keyring"]))
            for a in data["archives"]
        ),
        components=tuple(data.get("components", ["main"])),
        architectures=tuple(data["architectures"]),
        init=data["init"],
        runlevel_stop=data.get("runlevel_stop", "[016]"),
        version_suffix=data["version_suffix"],
        task_mode=tasks["mode"],
        task_section=tasks.get("section", "server"),
        reachable=data.get("reachable", True),
        chroot_max_age_days=float(data.get("chroot_max_age_days", 7)),
        origin=data.get("origin", "ClusterStack"),
        label=data.get("label", "ClusterStack"),
        path=path,
        valid_until_days=float(data.get("valid_until_days", 7)),
    )
