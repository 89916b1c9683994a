"""Neutralize: an open carbon-neutrality service platform."""

__version__ = "0.1.0"
