"""CI pipeline renderers, one module per CI system; see builder/pipeline.py."""
