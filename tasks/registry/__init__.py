"""OCI distribution (Docker Registry HTTP API v2) client: auth, tags, manifests, configs."""
