"""baseimage: keeps GPU training base images current, safe and proven (CLI and settings)."""

__version__ = "0.1.0"
