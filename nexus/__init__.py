"""Nexus Chat: a self-hosted terminal chat for a LAN or a small team."""

__version__ = "0.1.0"
