"""Uploaded media files."""
