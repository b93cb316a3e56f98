"""Webhooks: who may be called (policy.py) and the process that calls them (sender.py)."""
