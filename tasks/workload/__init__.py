"""The GPU workload that proves a candidate image: CuPy synthetic data (NumPy without a GPU), a
small torchvision ResNet trained for a few steps, evaluation, ONNX export and ONNX Runtime
parity. It imports nothing else from the project and no Prefect, so it runs inside the
candidate image as ``python -m tasks.workload --out result.json``."""
