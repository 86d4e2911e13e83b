"""The frameworks ``mlo.autolog()`` records out of the box, one module each: scikit-learn (estimators and
searches), XGBoost and LightGBM. None imports its framework at module level: a framework is patched when it is
imported (see :mod:`mlo.tracking.autolog`)."""
