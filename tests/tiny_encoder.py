"""The smallest Encoder4Editing the encoder tests train: one unit per stage, 8-16 channels."""

TINY_ENCODER = {
    "stage_units": [1, 1, 1, 1],
    "stage_channels": [8, 8, 16, 16],
    "style_channels": 16,
    "se_reduction": 4,
}
