"""Environments: compose deploys, the deployment ledger, restores."""
