"""Units of work: pure domain modules (no Prefect) and the thin task wrappers beside them."""
