"""Launchers for local runs (`make run`); not part of the installed package."""
