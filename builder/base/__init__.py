"""What every stage uses: errors, the one subprocess runner, digests, the download
cache, the output lock, progress, the output folders, YAML+schema loading, the
plugin registry, graph algorithms, a loopback HTTP server."""
