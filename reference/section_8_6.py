"""Reference for 8.6 Residual networks (ResNet) and ResNeXt: the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 8.6/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. In the book's `ResNeXtBlock`, `groups` is the WIDTH of
one group (channels per group): its 3×3 convolution gets `bot_channels // groups` groups.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% The book's code
class Residual(nn.Module):
    """The Residual block of ResNet models."""
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1,
                                   stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1,
                                       stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


class ResNet(d2l.Classifier):
    def b1(self):
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


@d2l.add_to_class(ResNet)
def block(self, num_residuals, num_channels, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels))
    return nn.Sequential(*blk)


@d2l.add_to_class(ResNet)
def __init__(self, arch, lr=0.1, num_classes=10):
    super(ResNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential(self.b1())
    for i, b in enumerate(arch):
        self.net.add_module(f'b{i+2}', self.block(*b, first_block=(i==0)))
    self.net.add_module('last', nn.Sequential(
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.LazyLinear(num_classes)))
    self.net.apply(d2l.init_cnn)


class ResNet18(ResNet):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)),
                         lr, num_classes)


class ResNeXtBlock(nn.Module):
    """The ResNeXt block. `groups` is the number of channels in ONE group (the book's convention); the
    grouped 3×3 convolution has bot_channels // groups groups."""
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False,
                 strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1, stride=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3,
                                   stride=strides, padding=1,
                                   groups=bot_channels//groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=1)
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()
        self.bn3 = nn.LazyBatchNorm2d()
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1,
                                       stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


# %% [markdown] 8.6/1
# An Inception block runs several branches of different kernel sizes side by side and concatenates
# them: it widens a layer. A residual block adds the input to the output of one branch: it makes the
# identity easy to learn and lets gradients skip layers, so networks can be much deeper. Removing
# Inception's branches one by one leaves something close to a residual block with one branch (plus a
# shortcut); ResNeXt is the bridge between the two: many identical branches (grouped convolution) added
# to a shortcut. Inception needs fewer parameters for the same width through its 1×1 reductions.


# %% 8.6/2
RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNET34_ARCH = ((3, 64), (4, 128), (6, 256), (3, 512))
RESNET50_ARCH = ((3, 64), (4, 128), (6, 256), (3, 512))    # with bottleneck blocks (channels = their width)


class ResNetFromTable(ResNet):
    """The book's ResNet for any row of the paper's table: basic blocks (two 3×3 convolutions) or
    bottleneck blocks of width `channels` whose output has 4 × channels."""
    def __init__(self, arch, kind="basic", lr=0.1, num_classes=10):
        d2l.Classifier.__init__(self)
        self.save_hyperparameters()      # (`kind`, not `block`: that name is the book's method)
        self.net = nn.Sequential(self.b1())
        in_channels = 64
        for i, (num_blocks, channels) in enumerate(arch):
            if kind == "basic":
                stage = self.block(num_blocks, channels, first_block=(i == 0))
            else:
                stage = []
                for j in range(num_blocks):
                    stage.append(Bottleneck(in_channels, channels, stride=2 if j == 0 and i > 0 else 1))
                    in_channels = 4 * channels
                stage = nn.Sequential(*stage)
            self.net.add_module(f'b{i + 2}', stage)
        self.net.add_module('last', nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(num_classes)))


def resnet(arch, block="basic", num_classes=10):
    return ResNetFromTable(arch, block, num_classes=num_classes)


# %% 8.6/3
class Bottleneck(nn.Module):
    """1×1 conv to `mid_channels` → 3×3 conv (carrying the stride) → 1×1 conv to 4 × mid_channels, each
    followed by batch norm; a 1×1 projection (with batch norm) on the shortcut when the shape changes."""
    expansion = 4

    def __init__(self, in_channels, mid_channels, stride=1):
        super().__init__()
        out_channels = self.expansion * mid_channels
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=1), nn.BatchNorm2d(mid_channels), nn.ReLU(),
            nn.Conv2d(mid_channels, mid_channels, kernel_size=3, stride=stride, padding=1),
            nn.BatchNorm2d(mid_channels), nn.ReLU(),
            nn.Conv2d(mid_channels, out_channels, kernel_size=1), nn.BatchNorm2d(out_channels))
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, X):
        shortcut = X if self.shortcut is None else self.shortcut(X)
        return F.relu(self.branch(X) + shortcut)


# %% 8.6/4
class PreActResidual(nn.Module):
    """The pre-activation block of He et al. (2016b): BN → ReLU → conv, twice; nothing after the addition,
    so the identity path runs from block to block untouched."""
    def __init__(self, channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
        self.conv1 = nn.LazyConv2d(channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(channels, kernel_size=1, stride=strides) if use_1x1conv else None

    def forward(self, X):
        Y = self.conv1(F.relu(self.bn1(X)))
        Y = self.conv2(F.relu(self.bn2(Y)))
        if self.conv3 is not None:
            X = self.conv3(X)
        return Y + X


# %% [markdown] 8.6/5
# More layers and wider blocks enlarge the function class, but the returns shrink: optimisation gets
# harder (even with shortcuts, very deep plain stacks degrade and training is slower), the larger class
# overfits a fixed data set, and compute, memory and latency grow linearly or worse with depth and
# quadratically with width. Accuracy per FLOP is what a design should spend, which is why deeper ResNets
# switch to bottleneck blocks and why later designs (8.8) search for good trade-offs instead.
