"""Bridges to other tools' stores: importing an MLflow tracking store (:mod:`mlo.interop.mlflow_import`)."""
