"""The vault: encrypted copies of credential files, keyed by a key kept outside the vault.

``crypto`` is the only module in credguard that touches cryptographic primitives; ``format`` is
the versioned on-disk item format; ``passphrase`` is the opt-in passphrase keystore for headless
machines.
"""
