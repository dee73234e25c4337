"""Dockerfile base-image extraction and exact-substring rewriting (pure, no I/O but reading)."""
