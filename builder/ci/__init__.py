"""The CI job model and its formats."""
