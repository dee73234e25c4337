"""Image references and the CUDA / NGC tag models (pure, no I/O)."""
