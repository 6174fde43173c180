"""Strategy `import`: binary packages taken unchanged from the base archive."""

from __future__ import annotations

import os
from pathlib import Path

from builder.base import digest
from builder.sources.upstream import BinaryPackage
from builder.stack.specs import ImportSpec

from ..strategy import Action, Artifacts, Context, Intent, Strategy


class ImportStrategy(Strategy[ImportSpec]):
    name = "import"
    spec_type = ImportSpec
    expected_seconds = 1.0
    imports_binaries = True

    def _select(self, ctx: Context) -> list[BinaryPackage]:
        spec = self.spec(ctx)
        source = spec.source
        found = ctx.upstream.binaries_of_source(source)
        if not found:
            raise ctx.recipe.error(f"source package '{source}' exists in none of "
                             f"the configured archives ({ctx.upstream.suites_label()})",
                             key="import.source")
        pinned = spec.versions.get(ctx.profile.name)
        if pinned and found[0].source_version != pinned:
            raise ctx.recipe.error(f"pins {source} {pinned} for {ctx.profile.name}, "
                             f"but the archive has {found[0].source_version}",
                             key=f"import.versions.{ctx.profile.name}")
        wanted = spec.binaries
        if wanted:
            names = {p.package for p in found}
            missing = [b for b in wanted if b not in names]
            if missing:
                raise ctx.recipe.error(f"binary package(s) {', '.join(missing)} not "
                                 f"built from source '{source}' in {ctx.profile.name}",
                                 key="import.binaries")
            found = [p for p in found if p.package in wanted]
        excluded = set(spec.exclude)
        return [p for p in found if p.package not in excluded]

    def intent(self, ctx: Context) -> Intent:
        pkgs = self._select(ctx)
        return Intent(Action.FETCH, self.spec(ctx).source, pkgs[0].source_version,
                      f"{len(pkgs)} binaries from {pkgs[0].suite}",
                      tuple(p.package for p in pkgs))

    def inputs(self, ctx: Context) -> dict[str, str]:
        return {
            "recipe": digest.of_file(ctx.recipe.path),
            "profile": digest.of_file(ctx.profile.path),
            "upstream": ctx.upstream.fingerprint(),
        }

    def produce(self, ctx: Context, dest: Path) -> Artifacts:
        pkgs = self._select(ctx)
        arts = Artifacts(self.spec(ctx).source, pkgs[0].source_version)
        for pkg in pkgs:
            # fetch_verified checks the sha256 that the verified Packages index gives.
            cached = ctx.fetcher.fetch_verified(pkg.url, pkg.sha256, pkg.size)
            target = dest / pkg.deb_name
            if not target.exists():
                try:
                    os.link(cached, target)
                except OSError:
                    target.write_bytes(cached.read_bytes())
            arts.debs.append(target)
        return arts
