"""The names each registry accepts, declared once here, where nothing heavy is imported.

The command line lists these as its choices, so `ganedit --help` and a mistyped flag answer
without importing torch, numpy or scikit-learn. The modules that implement each name import
its tuple from here (tests/test_startup.py checks that the CLI's import stays light and that
each registry serves exactly these names).
"""

from __future__ import annotations

# Direction estimators (ganedit.directions.estimators.METHODS maps each to its class).
DIRECTION_METHODS = ("interfacegan", "mab", "stratified", "regression", "fisher")
# The method `ganedit boundary` uses unless told otherwise, chosen on the committed 200k
# direction study on world64 (docs/directions_report) by the rule in docs/directions.md:
# of the methods that need no other boundaries, the one whose edits keep the most at 50%
# matched flips, identity cosine minus off-target change
# (`ganedit.evaluation.direction_report.recommended_methods`).
DEFAULT_METHOD = "regression"
SOLVERS = ("fast", "kernel")  # interfacegan's SVM solvers
SPLIT_MODES = ("ganedit", "reference")
QUOTAS = ("random", "exact")  # how mab's balanced sampler fills its cells

EDIT_MODES = ("relative", "absolute")

INVERT_METHODS = ("optimize", "pti", "encoder")
PIVOTS = ("optimize", "encoder")
PERCEPTUAL_NETWORKS = ("evaluator", "labeler", "identity")
MODE_SOURCES = ("read", "neutral")  # a self-conditioned generator's image modes
# Where the modes of a self-conditioned generator's samples come from: the data's mode
# distribution shipped with the model, every attribute neutral, or uniform as in training.
SAMPLE_MODES = ("data", "neutral", "uniform")

RESAMPLE_SCHEMES = ("knn", "density")
SELFCOND_INITS = ("offset", "copy")
# The generator's mode term: SC-GAN's auxiliary classifier (ac), or with TAC-GAN's twin
# classifier on fakes subtracted (twin), which cancels AC-GAN's pull toward prototypes.
SELFCOND_MODE_LOSSES = ("ac", "twin")
# Where the fakes' modes come from: t ~ U(0, 1) per attribute (SC-GAN), or the real images'
# modes as the (re-sampled) batches draw them.
SELFCOND_FAKE_MODES = ("uniform", "data")

# The face world's binary attributes, in the order the shipped attribute predictors output
# them (ganedit.world.config draws them; ganedit.models.predictors names its logits by them).
BINARY_ATTRIBUTES = ("smile", "gender", "glasses", "age")

# Shipped networks and generators, by name (ganedit.models.registry loads them).
PREDICTORS = ("labeler", "evaluator", "identity")
# Real-face networks built on dlib (ganedit[faces]; ganedit.models.face_measures): head pose,
# a mouth proxy (attribute predictors) and dlib's face-recognition embedder (identity).
FACE_NETWORKS = ("dlib-pose", "dlib-mouth", "dlib-identity")
EMBEDDED_GENERATORS = ("world64", "world64-v1", "world64-sc", "world64-sc-v1")
OPTIONAL_GENERATORS = ("dcgan-digiface",)
GENERATOR_NAMES = EMBEDDED_GENERATORS + OPTIONAL_GENERATORS
DEFAULT_GENERATOR = "world64"

IMAGE_FORMATS = ("png", "jpeg")  # the face world's image encodings
