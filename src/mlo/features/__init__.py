"""Features defined once for training and serving.

A :class:`FeatureView` is a named, versioned transform over a source snapshot, keyed by an entity and a timestamp
(:mod:`.views`); with ``aggregations=[agg(...)]`` its features are windowed aggregates over time
(:mod:`.aggregates`). :func:`training_frame` joins entity rows with feature values as of each row's time
(:mod:`.offline`, :mod:`.pointintime`); :func:`materialize` writes the latest values per entity to the online
table, which :func:`lookup` and ``mlo serve`` read (:mod:`.online`).
"""

from __future__ import annotations

from .aggregates import agg
from .offline import training_frame
from .online import lookup, materialize
from .views import FeatureView, feature, feature_views, get_feature_view

__all__ = [
    "FeatureView",
    "agg",
    "feature",
    "feature_views",
    "get_feature_view",
    "lookup",
    "materialize",
    "training_frame",
]
