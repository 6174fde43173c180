"""Build backends; see builder/buildroot/backend.py for the interface."""
