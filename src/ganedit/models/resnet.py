"""Bottleneck ResNets (the ResNet-50/101/152 family) in pure PyTorch, and a multi-head
attribute network on such a trunk.

The module names follow torchvision's ResNet (`conv1`, `bn1`, `layer1`..`layer4`, blocks with
`conv1..3`, `bn1..3`, `downsample.0/1`; the stride sits on the 3x3 convolution, "ResNet v1.5"),
so a torchvision state dict maps onto `ResNetTrunk` name for name. torchvision itself is not
needed. The trunk ends in global average pooling: any input of 32 px and more gives one
feature vector per image, which lets tests run a full-depth trunk on small images.

`remap_attribute_checkpoint` turns the state dict of the balanced-sampling reference's CelebA
predictor (a `features` Sequential holding torchvision's ResNet-50 children, and one
`fc_<attribute>` Linear(2048, 2) per attribute, optionally under DataParallel's `module.`) into
this module's names and infers the architecture from the tensor shapes.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ganedit.errors import UserInputError
from ganedit.utils.params import Name

RESNET50_BLOCKS = (3, 4, 6, 3)
EXPANSION = 4  # bottleneck output channels per `planes`
MAX_WIDTH = 512  # stem channels; torchvision's ResNets use 64
MAX_BLOCKS = 64  # per stage; ResNet-152 has 36


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand, plus an identity or projected shortcut."""

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * EXPANSION
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(h + skip)


class ResNetTrunk(nn.Module):
    """torchvision's ResNet without its classifier: images [N, 3, H, W] -> features [N, F],
    F = 32 * width (2048 for ResNet-50)."""

    def __init__(self, blocks: tuple[int, ...] = RESNET50_BLOCKS, width: int = 64):
        super().__init__()
        if len(blocks) != 4 or not all(1 <= b <= MAX_BLOCKS for b in blocks):
            raise ValueError(f"expected 4 stages of 1..{MAX_BLOCKS} blocks, received {blocks}")
        if not 1 <= width <= MAX_WIDTH:
            raise ValueError(f"expected a stem width in 1..{MAX_WIDTH}, received {width}")
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = width
        for stage, count in enumerate(blocks):
            planes, stride = width * 2**stage, 1 if stage == 0 else 2
            layers = []
            for k in range(count):
                layers.append(Bottleneck(cin, planes, stride if k == 0 else 1))
                cin = planes * EXPANSION
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.features = cin

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] -> [N, F]
        h = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return torch.flatten(h.mean(dim=(2, 3)), 1)


class MultiHeadResNet(nn.Module):
    """A ResNet trunk with one Linear(F, classes) head per attribute: name -> logits [N, C]."""

    def __init__(
        self,
        heads: tuple[str, ...],
        blocks: tuple[int, ...] = RESNET50_BLOCKS,
        width: int = 64,
        classes: int = 2,
    ):
        super().__init__()
        self.config = {"heads": list(heads), "blocks": list(blocks), "width": width}
        self.trunk = ResNetTrunk(tuple(blocks), width)
        self.heads = nn.ModuleDict({h: nn.Linear(self.trunk.features, classes) for h in heads})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(images)  # [N, F]
        return {name: head(h) for name, head in self.heads.items()}  # name -> [N, C]


# ------------------------------------------------------------------------------------------
# The reference checkpoint's names

# The reference keeps `list(resnet50.children())[:-1]` as `features`: index -> torchvision name
# (2 is the ReLU, 3 the max pool, 8 the average pool: none has weights).
_SEQUENTIAL = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
_TORCHVISION_TOP = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
# Head names in the reference (`fc_<name>`) that ganedit spells differently.
HEAD_ALIASES = {"eyeglasses": "glasses"}
_HEAD = re.compile(r"fc_([A-Za-z][A-Za-z0-9_]*)\.(weight|bias)")
_OPTIONAL = "num_batches_tracked"  # BatchNorm's counter: absent from files of old PyTorch


def _strip_parallel(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def _our_key(key: str) -> str | None:
    """Our name for a checkpoint key, or None for a key we do not know."""
    key = _strip_parallel(key)
    if key.startswith("features."):
        index, _, rest = key[len("features.") :].partition(".")
        return f"trunk.{_SEQUENTIAL[index]}.{rest}" if index in _SEQUENTIAL and rest else None
    if key.startswith(_TORCHVISION_TOP):
        return f"trunk.{key}"
    match = _HEAD.fullmatch(key)
    if match:
        name = match.group(1).lower()
        return f"heads.{HEAD_ALIASES.get(name, name)}.{match.group(2)}"
    return None


def remap_attribute_checkpoint(
    state: dict[str, torch.Tensor], where: str
) -> tuple[dict[str, torch.Tensor], dict]:
    """The reference layout (or torchvision's trunk names) -> (our state dict, MultiHeadResNet
    kwargs), checked name for name and shape for shape against the network it describes.

    Raises:
        UserInputError: unknown or missing keys, shapes of another network, no heads.
    """
    ours: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        name = _our_key(str(key))
        if name is None or name in ours:
            unknown.append(str(key))
        else:
            ours[name] = value
    if unknown:
        raise UserInputError(
            f"expected a ResNet trunk (`features.N.` or torchvision names, optionally under "
            f"`module.`) and `fc_<attribute>` heads in {where}, received other keys "
            f"{unknown[:4]}{' ...' if len(unknown) > 4 else ''}"
        )
    kwargs = _infer_architecture(ours, where)
    expected = _shapes_on_meta(kwargs, where)
    _check_names_and_shapes(ours, expected, where)
    return ours, kwargs


def _infer_architecture(state: dict[str, torch.Tensor], where: str) -> dict:
    stem = state.get("trunk.conv1.weight")
    if stem is None or stem.ndim != 4:
        raise UserInputError(
            f"expected a ResNet stem `conv1.weight` [width, 3, 7, 7] in {where}, received "
            f"{None if stem is None else tuple(stem.shape)}"
        )
    heads = list(dict.fromkeys(k.split(".")[1] for k in state if k.startswith("heads.")))
    bad = [h for h in heads if not Name().accepts(h)]
    if not heads or bad:
        raise UserInputError(
            f"expected at least one `fc_<attribute>` head named with letters, digits or '_' "
            f"in {where}, received {bad or 'none'}"
        )
    blocks = []
    for stage in range(1, 5):
        found = {
            int(m.group(1)) for k in state if (m := re.match(rf"trunk\.layer{stage}\.(\d+)\.", k))
        }
        blocks.append(max(found) + 1 if found else 0)
    classes = state.get(f"heads.{heads[0]}.weight")
    return {
        "heads": tuple(heads),
        "blocks": tuple(blocks),
        "width": int(stem.shape[0]),
        "classes": int(classes.shape[0]) if classes is not None and classes.ndim == 2 else 2,
    }


def _shapes_on_meta(kwargs: dict, where: str) -> dict[str, tuple[int, ...]]:
    # The meta device allocates nothing: a file's claimed architecture is checked for free.
    try:
        with torch.device("meta"):
            model = MultiHeadResNet(**kwargs)
    except ValueError as err:
        raise UserInputError(f"expected a bottleneck ResNet in {where}, received {err}") from None
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_names_and_shapes(
    state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], where: str
) -> None:
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL)]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise UserInputError(
            f"expected the keys of a bottleneck ResNet with the heads it names in {where}, "
            f"received {len(missing)} missing (e.g. {missing[:3]}) and {len(extra)} unexpected "
            f"(e.g. {extra[:3]})"
        )
    for key, shape in expected.items():
        if key in state and tuple(state[key].shape) != shape:
            raise UserInputError(
                f"expected {key} of shape {list(shape)} in {where}, received "
                f"{list(state[key].shape)}"
            )
