"""credguard: keeps Azure credential files off a developer's disk."""

__version__ = "0.1.0"
