"""8.2, right answers written differently (from tests/test_section_8_2.py): explicit layer sizes, counts by hand
in MACs, lists and a lambda for 8.2/3, strided convolutions in VGGSmall."""
# %%
import torch
from torch import nn
from torch.nn import functional as F


# %% 8.2/1
param_counts = {"alexnet": torch.tensor(46.8e6), "vgg11": 128.8e6}
vgg_flop_split = {"conv": 7_430_000_000, "fc": 119_000_000, "unit": "MACs"}


# %% 8.2/2
class VGG(nn.Module):   # plain layers with their input sizes worked out, no d2l
    def __init__(self, arch, num_classes=10, in_channels=1):
        super().__init__()
        blocks = []
        for num_convs, out_channels in arch:
            blocks.append(vgg_block(num_convs, out_channels, in_channels))
            in_channels = out_channels
        self.net = nn.Sequential(*blocks, nn.Flatten(),
                                 nn.Linear(in_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(4096, num_classes))

    def forward(self, X):
        return self.net(X)


def vgg_block(num_convs, out_channels, in_channels=None):
    layers = []
    for i in range(num_convs):
        conv = nn.LazyConv2d(out_channels, 3, padding=1) if in_channels is None else \
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1)
        layers += [conv, nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


# %% 8.2/3
VGG16_ARCH = [[n, c] for n, c in zip([2, 2, 3, 3, 3], [64, 128, 256, 512, 512])]
VGG19_ARCH = [(n + (n == 3), c) for n, c in VGG16_ARCH]
vgg = lambda arch, num_classes=10: VGG(arch, num_classes)


# %% 8.2/4
class VGGSmall(nn.Module):   # strided convolutions downsample, after two 3x3 convolutions each
    def __init__(self, input_size):
        super().__init__()
        def stage(c):
            return [nn.LazyConv2d(c, 3, padding=1), nn.ReLU(), nn.LazyConv2d(c, 3, padding=1), nn.ReLU(),
                    nn.LazyConv2d(c, 3, stride=2, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*stage(16), *stage(32), *stage(32))
        self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))

    def forward(self, X):
        return self.head(self.body(X))
