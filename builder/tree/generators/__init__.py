"""Generators of native recipes, one module each; see builder/tree/generator.py."""
