"""Every family as data, without torch: its options, defaults, depth rule and where its builder lives.

The CLI, the spec validator, the Launch form and ``skipweb models`` read only this, so commands that build
no network never import torch; ``ModelInfo.build`` imports the builder's module the first time a network
of that family is built. Registration order is the order users see families in.
"""

from __future__ import annotations

from skipweb.models._registry import COMMON_CHOICES, ModelInfo, register_model

# ---- CIFAR ResNet layout: plain, resnet, highway (He et al. 2015, https://arxiv.org/abs/1512.03385) ----
CIFAR_MAX_DEPTH = 1202  # the deepest net of He et al. 2015; beyond it a CPU run is hopeless anyway
BLOCK_LAYERS = {"basic": 2, "preact": 2, "bottleneck": 3}  # weight layers per residual block
CIFAR_WIDTHS = (8, 16, 32, 64)
CIFAR_DEFAULTS = {"width": 16, "norm": "batch", "act": "relu", "init": "kaiming"}
GATE_BIASES = (-1.0, -2.0, -3.0, 0.0)
HE2015 = "https://arxiv.org/abs/1512.03385"


def cifar_depth_error(family: str, block: str, depth: int) -> str | None:
    """None if ``depth`` fits the 6n+2 (or bottleneck 9n+2) rule, else a one-line message."""
    layers = BLOCK_LAYERS[block]
    if depth >= 3 * layers + 2 and depth <= CIFAR_MAX_DEPTH and (depth - 2) % (3 * layers) == 0:
        return None
    if layers == 3:
        return f"{family} bottleneck blocks need depth 9n+2 up to {CIFAR_MAX_DEPTH} (56, 110, 164, 1001, ...)"
    return f"{family} {block} blocks need depth 6n+2 up to {CIFAR_MAX_DEPTH} (20, 32, 44, 56, 110, ...)"


# ---- DenseNet (Huang et al. 2017) ---------------------------------------------------------------------
DENSENET_MAX_DEPTH = 400  # the paper's deepest is 250; deeper dense nets do not fit a GPU at CIFAR batches


def densenet_depth_error(depth: int, opts: dict) -> str | None:
    bc = bool(opts.get("bc"))
    step = 6 if bc else 3
    examples = "40, 100, 190, 250" if bc else "40, 100, 250"
    if depth < 4 + step or (depth - 4) % step or depth > DENSENET_MAX_DEPTH:
        return (f"DenseNet{'-BC' if bc else ''} needs depth {step}n+4 from {4 + step} to {DENSENET_MAX_DEPTH} "
                f"({examples}, ...)")  # fmt: skip
    return None


# ---- U-Net, MLP, torchvision -----------------------------------------------------------------------------
UNET_MAX_DEPTH = 6
MLP_MAX_DEPTH = 1000
MLP_WIDTHS = (64, 128, 256, 512, 1024)
TORCHVISION_ARCHS = {18: "resnet18", 34: "resnet34", 50: "resnet50", 121: "densenet121"}


def unet_depth_error(depth: int, opts: dict) -> str | None:
    del opts  # the image-size rule needs the dataset: unet_image_error
    return None if 1 <= depth <= UNET_MAX_DEPTH else f"U-Net depth is the number of down steps, 1 to {UNET_MAX_DEPTH}"


def unet_image_error(depth: int, image_size: int) -> str | None:
    """Each down step halves the image: its size must be divisible by 2**depth."""
    if image_size % 2**depth == 0:
        return None
    fits = [d for d in range(1, UNET_MAX_DEPTH + 1) if image_size % 2**d == 0]
    hint = f"use depth <= {fits[-1]}" if fits else "use an even image size"
    return f"unet: image size {image_size} is not divisible by 2**{depth}; {hint}"


def mlp_depth_error(depth: int, opts: dict) -> str | None:
    del opts
    if 2 <= depth <= MLP_MAX_DEPTH:
        return None
    return f"mlp depth counts linear layers and must be between 2 and {MLP_MAX_DEPTH} (e.g. 4, 8, 16, 32, 64)"


def torchvision_depth_error(depth: int, opts: dict) -> str | None:
    del opts
    return None if depth in TORCHVISION_ARCHS else "torchvision references: depth 18, 34, 50 (resnet) or 121 (densenet)"


# ---- the registry, in the order users see families ----------------------------------------------------
register_model(ModelInfo(
    name="plain",
    builder="skipweb.models.resnet:plain",
    task="classification",
    summary="Plain CIFAR conv net of He et al. 2015: the ResNet with every shortcut removed.",
    depth_rule="6n+2 (20, 32, 44, 56, 110, ...)",
    check_depth=lambda depth, opts: cifar_depth_error("plain", "basic", depth),
    example_depths=(20, 32, 44, 56, 110),
    options={"width": CIFAR_WIDTHS, **COMMON_CHOICES},
    defaults=dict(CIFAR_DEFAULTS),
    paper=HE2015,
))  # fmt: skip

register_model(ModelInfo(
    name="resnet",
    builder="skipweb.models.resnet:resnet",
    task="classification",
    summary="CIFAR ResNet of He et al. 2015 (basic, pre-activation or bottleneck blocks).",
    depth_rule="6n+2 for basic/preact (20, 32, 44, 56, 110, ...); 9n+2 for bottleneck (56, 110, 164, ...)",
    check_depth=lambda depth, opts: cifar_depth_error("resnet", opts.get("block", "basic"), depth),
    example_depths=(20, 32, 44, 56, 110),
    options={"block": tuple(BLOCK_LAYERS), "shortcut": ("A", "B"), "no_skip": (False, True),
             "zero_init_residual": (False, True), "width": CIFAR_WIDTHS, **COMMON_CHOICES},
    defaults={"block": "basic", "shortcut": "A", "no_skip": False, "zero_init_residual": False, **CIFAR_DEFAULTS},
    paper=HE2015,
))  # fmt: skip

register_model(ModelInfo(
    name="densenet",
    builder="skipweb.models.densenet:densenet",
    task="classification",
    summary=(
        "DenseNet (CIFAR): each layer receives the concatenated feature maps of all earlier layers in "
        "its block; bc adds 1x1 bottlenecks and halving transitions. no_skip feeds each layer only its "
        "predecessor's output (and so has fewer parameters)."
    ),
    depth_rule="3n+4 (40, 100, ...); with bc: 6n+4 (40, 100, 250, ...)",
    check_depth=densenet_depth_error,
    example_depths=(22, 40, 100),
    options={"growth": (12, 24, 32, 40), "bc": (False, True), "no_skip": (False, True), **COMMON_CHOICES},
    defaults={"growth": 12, "bc": False, "no_skip": False, "norm": "batch", "act": "relu", "init": "kaiming"},
    paper="https://arxiv.org/abs/1608.06993",
))  # fmt: skip

register_model(ModelInfo(
    name="highway",
    builder="skipweb.models.highway:highway",
    task="classification",
    summary="Convolutional highway net: sigmoid-gated carry H(x)*T(x) + x*(1-T(x)) on the plain CIFAR layout.",
    depth_rule="6n+2 (20, 32, 44, 56, 110, ...)",
    check_depth=lambda depth, opts: cifar_depth_error("highway", "basic", depth),
    example_depths=(20, 32, 44, 56, 110),
    options={"width": CIFAR_WIDTHS, **COMMON_CHOICES, "gate_bias": GATE_BIASES, "no_skip": (False, True)},
    defaults={**CIFAR_DEFAULTS, "gate_bias": -2.0, "no_skip": False},
    paper="https://arxiv.org/abs/1507.06228",
))  # fmt: skip

register_model(ModelInfo(
    name="unet",
    builder="skipweb.models.unet:unet",
    task="segmentation",
    summary=(
        "U-Net (padded convs): encoder-decoder whose long skips hand each encoder level's feature map "
        "to the decoder, by concatenation (original), addition, or not at all (skip=none). "
        "Depth = down steps; the image size must be divisible by 2**depth."
    ),
    depth_rule="1 to 6 down steps; image size divisible by 2**depth",
    check_depth=unet_depth_error,
    check_image=unet_image_error,
    example_depths=(2, 3, 4),
    options={"width": (8, 16, 32, 64), "skip": ("concat", "add", "none"), "up": ("transpose", "bilinear"),
             **COMMON_CHOICES},
    defaults={"width": 64, "skip": "concat", "up": "transpose", "norm": "batch", "act": "relu", "init": "kaiming"},
    paper="https://arxiv.org/abs/1505.04597",
))  # fmt: skip

register_model(ModelInfo(
    name="mlp",
    builder="skipweb.models.mlp:mlp",
    task="classification",
    summary="Fully connected net on flattened pixels, with pre-activation residual hidden layers or without.",
    depth_rule=f"any number of linear layers from 2 to {MLP_MAX_DEPTH} (4, 8, 16, 32, 64, ...)",
    check_depth=mlp_depth_error,
    example_depths=(4, 8, 16, 32, 64),
    options={"width": MLP_WIDTHS, **COMMON_CHOICES, "no_skip": (False, True), "zero_init_residual": (False, True)},
    defaults={"width": 256, "norm": "batch", "act": "relu", "init": "kaiming", "no_skip": False,
              "zero_init_residual": False},
    paper="https://arxiv.org/abs/1603.05027",
))  # fmt: skip

register_model(ModelInfo(
    name="torchvision",
    builder="skipweb.models.tv:torchvision_net",
    task="classification",
    summary=(
        "torchvision's resnet18/34/50 and densenet121, unchanged, as reference baselines (depth picks "
        "the network). Inputs smaller than 32x32 are upsampled bilinearly to 32x32. pretrained loads "
        "ImageNet weights; the classifier (and, for in_channels != 3, the first conv) is then adapted."
    ),
    depth_rule="18, 34, 50 (resnet) or 121 (densenet)",
    check_depth=torchvision_depth_error,
    example_depths=tuple(TORCHVISION_ARCHS),
    options={"pretrained": (False, True)},
    defaults={"pretrained": False},
    paper=HE2015,
))  # fmt: skip
