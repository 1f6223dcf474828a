"""Reference for 8.2 Networks using blocks (VGG): the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 8.2/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. Nothing trains at import time, and no figure below is
typed in: the counts are measured from the models (on the `meta` device, so VGG at 224×224 costs no
arithmetic), exactly as the grader measures the reference.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode
from d2l import torch as d2l


# %% The book's code
def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(d2l.Classifier):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        conv_blks = []
        for (num_convs, out_channels) in arch:
            conv_blks.append(vgg_block(num_convs, out_channels))
        self.net = nn.Sequential(
            *conv_blks, nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(num_classes))
        self.net.apply(d2l.init_cnn)


VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


class AlexNet(d2l.Classifier):
    """The book's AlexNet (section 8.1), for the comparison of exercise 1."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
            nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(256, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(num_classes))
        self.net.apply(d2l.init_cnn)


def on_meta(model_factory, X_shape=(1, 1, 224, 224)):
    """A model built on the meta device, its lazy layers materialised by one forward pass (no arithmetic)."""
    with torch.device("meta"):
        model = model_factory()
        model(torch.zeros(X_shape))
    return model


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def flop_split(model, X_shape=(1, 1, 224, 224)):
    """FLOPs of one forward pass (a multiply-add = 2), split into convolutions and fully connected layers."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(X_shape, device="meta"))
    split = {"conv": 0, "fc": 0}
    for op, count in counter.get_flop_counts()["Global"].items():
        split["conv" if "convolution" in str(op) else "fc"] += count
    return split


# %% 8.2/1
param_counts = {"alexnet": parameter_count(on_meta(AlexNet)),
                "vgg11": parameter_count(on_meta(lambda: VGG(VGG11_ARCH)))}
vgg_flop_split = dict(flop_split(on_meta(lambda: VGG(VGG11_ARCH))), unit="FLOPs")

# %% [markdown] 8.2/1.3
# VGG-11 has about 2.8 times AlexNet's parameters (128.8 M against 46.8 M), almost all of them in the
# first dense layer, which sees the flattened 512×7×7 map (102.8 M weights). Its convolutions do nearly all
# of the work: about 15 GFLOPs per image against 0.24 GFLOPs in the dense layers. To cut the dense layers'
# cost: shrink the map they see (one more pooling, or global average pooling as in NiN), use fewer or
# narrower dense layers (e.g. 4096 → 512), or replace them with a 1×1 convolution to the classes.


# %% [markdown] 8.2/2
# `layer_summary` walks `self.net`, whose first five entries are whole VGG blocks (each an `nn.Sequential`
# of convolutions, ReLUs and a pooling layer): it prints one line per block, then Flatten and the dense
# stack. The eight convolutions sit inside the blocks (1+1+2+2+2), so with the three dense layers the
# network has 11 layers with weights, which is where "VGG-11" comes from.


# %% 8.2/3
VGG16_ARCH = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
VGG19_ARCH = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


def vgg(arch, num_classes=10):
    return VGG(arch, num_classes=num_classes)


# %% 8.2/4
class VGGSmall(d2l.Classifier):
    """VGG for 56×56 or 84×84 images: two convolutions (so two ReLUs) before every pooling, as the VGG
    paper stacks nonlinearities, three blocks instead of five, and a global average pooling head, so the
    same network takes either size."""
    def __init__(self, input_size=56, lr=0.05, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        arch = ((2, 16), (2, 32), (2, 64)) if input_size <= 56 else ((2, 16), (2, 32), (2, 64), (2, 64))
        self.net = nn.Sequential(
            *[vgg_block(n, c) for n, c in arch],
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.LazyLinear(128), nn.ReLU(), nn.LazyLinear(num_classes))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=2e-3)

# %% [markdown] 8.2/4
# At 56×56 three blocks of two 3×3 convolutions (16, 32, 64 channels) bring the map to 7×7, and a global
# average pooling feeds a small dense head: two ReLUs per block add nonlinearity before every downsampling,
# as in the VGG paper, at a sixteenth of the 224×224 cost.
