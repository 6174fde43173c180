"""CI pipeline renderers, one module per CI system; see builder/ci/pipeline.py."""
