"""8.2, wrong answers (from tests/test_section_8_2.py): the two networks' counts swapped, the FLOP split swapped,
a block without ReLUs, one hidden dense layer, vgg() dropping a block, VGGSmall resizing to 224."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.2/1
param_counts = {"alexnet": 128_806_154, "vgg11": 46_764_746}
vgg_flop_split = {"conv": 238_000_000, "fc": 14_860_000_000, "unit": "FLOPs"}


# %% 8.2/2
def vgg_block(num_convs, out_channels):
    return nn.Sequential(*[m for _ in range(num_convs) for m in (nn.LazyConv2d(out_channels, 3, 1, 1),)],
                         nn.MaxPool2d(2, 2))


class VGG(d2l.Classifier):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        head = [nn.Flatten()]
        for width in (4096,):
            head += [nn.LazyLinear(width), nn.ReLU(), nn.Dropout(0.5)]
        self.net = nn.Sequential(*(vgg_block(*a) for a in arch), *head, nn.LazyLinear(num_classes))


# %% 8.2/3
VGG16_ARCH = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
VGG19_ARCH = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


def vgg(arch, num_classes=10):
    return VGG(arch[:4], num_classes=num_classes)


# %% 8.2/4
class VGGSmall(nn.Module):   # resizes to 224 and runs a thin VGG
    def __init__(self, input_size):
        super().__init__()
        self.vgg = VGG(((2, 64), (2, 128), (2, 256)))

    def forward(self, X):
        return self.vgg(F.interpolate(X, size=224))
