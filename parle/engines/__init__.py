"""Engines: one file each, behind the small Protocols of `parle.engines.base`."""
