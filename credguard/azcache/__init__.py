"""Sealing the Azure CLI, Azure PowerShell and azd credential caches in the vault."""
