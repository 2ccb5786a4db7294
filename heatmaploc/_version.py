"""The package version (its one home: setup.cfg reads it, modules import it from here)."""
__version__ = "0.1.0"
