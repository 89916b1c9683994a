"""Signed certificates of retirements and shares, their claim wording and their verification."""
