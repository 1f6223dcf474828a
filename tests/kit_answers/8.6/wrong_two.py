"""8.6, wrong answers (from tests/test_section_8_6.py): a Residual without its shortcut, two blocks per
stage, a stride in the first bottleneck stage, a wide 3×3 in the bottleneck, an ungrouped ResNeXt convolution,
post-activation order in the pre-activation block."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.6/2
def _stage(c_in, c_out, n, first):
    layers = []
    for i in range(n):
        stride = 2 if i == 0 and not first else 1
        layers.append(Block(c_in if i == 0 else c_out, c_out, stride))
    return layers

class Block(nn.Module):   # explicit in_channels, biases off, projection without batch norm
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                                  nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else nn.Identity()
    def forward(self, X):
        return torch.relu(self.body(X) + self.skip(X))

class Bottleneck(nn.Module):
    def __init__(self, in_channels, mid_channels, stride=1):
        super().__init__()
        out = 4 * mid_channels
        self.a = nn.Sequential(nn.Conv2d(in_channels, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels), nn.ReLU(),
                               nn.Conv2d(mid_channels, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out), nn.Conv2d(out, mid_channels, 1), nn.ReLU(),
                               nn.Conv2d(mid_channels, out, 1, bias=False), nn.BatchNorm2d(out))
        self.skip = nn.Identity() if stride == 1 and in_channels == out else \
            nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    def forward(self, X):
        return torch.relu(self.a(X) + self.skip(X))

RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))
RESNET34_ARCH = ((3, 64), (4, 128), (6, 256), (3, 512))

def resnet(arch, block="basic", num_classes=10):
    layers = [nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for i, (n, c) in enumerate(arch):
        if block == "basic":
            layers += _stage(c_in, c, 2, i == 0)
            c_in = c
        else:
            for j in range(n):
                layers.append(Bottleneck(c_in, c, 2 if j == 0 else 1))
                c_in = 4 * c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


# %% 8.6/2
Residual = d2l.Residual      # the d2l package's own block

class ResNet18(nn.Module):   # the same stages, written out without add_to_class
    def __init__(self, num_classes=10):
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        stages = [nn.Sequential(d2l.Residual(c, use_1x1conv=k > 0, strides=2 if k > 0 else 1), d2l.Residual(c))
                  for k, c in enumerate((64, 128, 256, 512))]
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(num_classes))
        self.net = nn.Sequential(stem, *stages, head)
    def forward(self, X):
        return self.net(X)


# %% 8.6/2
class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, 3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, 3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, 1, stride=strides) if use_1x1conv else None
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
    def forward(self, X):
        Y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(X)))))
        if self.conv3:
            X = self.conv3(X)
        return F.relu(Y)


# %% 8.6/3
class ResNeXtBlock(nn.Module):   # one Sequential branch; `groups` is the width of a group, as in the book
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        b = int(round(num_channels * bot_mul))
        self.branch = nn.Sequential(
            nn.LazyConv2d(b, 1, bias=False), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(b, 3, stride=strides, padding=1, groups=1, bias=False), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, 1, bias=False), nn.LazyBatchNorm2d())
        self.skip = nn.Sequential(nn.LazyConv2d(num_channels, 1, stride=strides, bias=False), nn.LazyBatchNorm2d()) \
            if use_1x1conv else nn.Identity()
    def forward(self, X):
        return F.relu(self.branch(X) + self.skip(X))


# %% 8.6/4
class PreActResidual(nn.Module):   # modules in Sequentials, projection on the shortcut
    def __init__(self, channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.branch = nn.Sequential(
            nn.LazyConv2d(channels, 3, stride=strides, padding=1, bias=False), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(channels, 3, padding=1, bias=False))
        self.skip = nn.LazyConv2d(channels, 1, stride=strides, bias=False) if use_1x1conv else nn.Identity()
    def forward(self, X):
        return self.branch(X) + self.skip(X)
