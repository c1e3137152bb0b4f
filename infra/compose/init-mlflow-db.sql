-- MLflow keeps its runs and registry in a database of its own beside Triptych's.
CREATE DATABASE mlflow;
