"""Reusable layout factories (`create_*`) and figure factories for the views."""
