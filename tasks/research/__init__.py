"""The research phase: facts and live sources (NVIDIA support policy, drivers, PyTorch wheels,
CuPy, ONNX Runtime, OSV, Ubuntu), the compatibility matrix and the migration planner."""
