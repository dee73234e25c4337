"""The reference inference service: a consumer of the models the training service exports. It
pins its ONNX Runtime in ``requirements.txt``; baseimage checks that what a migrated training
image exports still loads there (``consumers:`` in config/policy.yaml)."""
