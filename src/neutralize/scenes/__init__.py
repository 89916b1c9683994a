"""Scenes: events, scenic spots, hotels, restaurants and the life page, each with its calculator,
QR entry point and organiser dashboard."""
