"""Certificates: signed records of retired credits, and their renderings for people."""
