"""8.6, right answers written otherwise (from tests/test_section_8_6.py): torchvision's ResNets and
bottleneck, the book's blocks without add_to_class, a Sequential ResNeXt block, a pre-activation block whose
projection takes the pre-activated input."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.6/2
import torchvision
from torchvision.models import resnet as tv

RESNET18_ARCH = [[2, 64], [2, 128], [2, 256], [2, 512]]
RESNET34_ARCH = ([3, 64], [4, 128], [6, 256], [3, 512])

def resnet(arch, block="basic", num_classes=10):   # torchvision's networks for 1-channel images
    kind = tv.BasicBlock if block == "basic" else tv.Bottleneck
    net = tv.ResNet(kind, [n for n, _ in arch], num_classes=num_classes)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return net


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


# %% 8.6/3
from torchvision.models.resnet import Bottleneck as _TV

def Bottleneck(in_channels, mid_channels, stride=1):   # torchvision's block, with its downsample path
    down = None
    if stride != 1 or in_channels != 4 * mid_channels:
        down = nn.Sequential(nn.Conv2d(in_channels, 4 * mid_channels, 1, stride, bias=False),
                             nn.BatchNorm2d(4 * mid_channels))
    return _TV(in_channels, mid_channels, stride, down)



class ResNeXtBlock(nn.Module):   # one Sequential branch; `groups` is the width of a group, as in the book
    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        b = int(round(num_channels * bot_mul))
        self.branch = nn.Sequential(
            nn.LazyConv2d(b, 1, bias=False), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(b, 3, stride=strides, padding=1, groups=b // groups, bias=False), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.LazyConv2d(num_channels, 1, bias=False), nn.LazyBatchNorm2d())
        self.skip = nn.Sequential(nn.LazyConv2d(num_channels, 1, stride=strides, bias=False), nn.LazyBatchNorm2d()) \
            if use_1x1conv else nn.Identity()
    def forward(self, X):
        return F.relu(self.branch(X) + self.skip(X))


# %% 8.6/4
class PreActResidual(nn.Module):   # the projection takes the pre-activated input, as in many implementations
    def __init__(self, channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()
        self.conv1 = nn.LazyConv2d(channels, 3, stride=strides, padding=1)
        self.conv2 = nn.LazyConv2d(channels, 3, padding=1)
        self.proj = nn.LazyConv2d(channels, 1, stride=strides) if use_1x1conv else None
    def forward(self, X):
        A = F.relu(self.bn1(X))
        shortcut = self.proj(A) if self.proj is not None else X
        return self.conv2(F.relu(self.bn2(self.conv1(A)))) + shortcut
