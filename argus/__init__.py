"""Argus: wiring (config, CLI, app assembly)."""
