"""Shared test helpers: imported as ``helpers.<module>``, never from conftest."""
