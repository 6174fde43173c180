"""Generators of native recipes, one module each; see builder/generator.py."""
