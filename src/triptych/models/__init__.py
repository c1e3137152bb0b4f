"""The three competitors: torchvision architectures, their preprocessing, the
backends that run them, training, and the MLflow registry that holds versions."""
