"""Floorpulse engine: everything that is not Dash."""
__version__ = "0.1.0"
