"""Proxmox VE through proxmoxer: see ``adapter.py`` and docs/providers/proxmox.md."""
