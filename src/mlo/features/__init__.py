"""Features defined once for training and serving.

A :class:`FeatureView` is a named, versioned, row-wise transform over a source snapshot, keyed by an entity and
a timestamp (:mod:`.views`). :func:`training_frame` joins entity rows with feature values as of each row's time
(:mod:`.offline`, DuckDB's ASOF JOIN); :func:`materialize` writes the latest value per entity to the online table,
which :func:`lookup` and ``mlo serve`` read (:mod:`.online`).
"""

from __future__ import annotations

from .offline import training_frame
from .online import lookup, materialize
from .views import FeatureView, feature, feature_views, get_feature_view

__all__ = [
    "FeatureView",
    "feature",
    "feature_views",
    "get_feature_view",
    "lookup",
    "materialize",
    "training_frame",
]
