"""Semantic directions in a latent space: balanced sampling, estimators, boundary files."""

from ganedit.directions.estimators import (
    MAB,
    METHODS,
    SPLIT_MODES,
    Conditional,
    DirectionEstimator,
    Fisher,
    InterFaceGAN,
    Regression,
    Stratified,
    make_estimator,
    project_orthogonal,
)
from ganedit.directions.io import load_boundary, save_boundary, sidecar_path
from ganedit.directions.sampling import (
    BalancedSample,
    ContingencyTable,
    Scores,
    balanced_subset,
    binary_labels,
    confident_mask,
    resolve_attributes,
)

__all__ = [
    "MAB",
    "METHODS",
    "SPLIT_MODES",
    "BalancedSample",
    "Conditional",
    "ContingencyTable",
    "DirectionEstimator",
    "Fisher",
    "InterFaceGAN",
    "Regression",
    "Scores",
    "Stratified",
    "balanced_subset",
    "binary_labels",
    "confident_mask",
    "load_boundary",
    "make_estimator",
    "project_orthogonal",
    "resolve_attributes",
    "save_boundary",
    "sidecar_path",
]
