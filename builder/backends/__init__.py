"""Build backends; see builder/backend.py for the interface."""
