"""Detection of Azure credential files.

The registry (which files are candidates, which family judges them) is
:mod:`credguard.detect.registry`; this package init stays empty so that commands which only
need a kind id or the XML parser (``exec``, ``vault``) do not load every detector family.
"""
