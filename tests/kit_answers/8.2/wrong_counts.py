"""8.2, wrong answers (from tests/test_section_8_2.py): the ImageNet AlexNet count, MACs labelled FLOPs, a pooling
window of 3, a typo in VGG-16's table, vgg() ignoring num_classes, one convolution before most poolings."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.2/1
param_counts = {"alexnet": 50_844_008, "vgg11": 128_806_154}
vgg_flop_split = {"conv": 7_430_000_000, "fc": 119_000_000, "unit": "FLOPs"}


# %% 8.2/2
def vgg_block(num_convs, out_channels):   # one list comprehension, a 3x3 pooling window
    return nn.Sequential(*[m for _ in range(num_convs) for m in (nn.LazyConv2d(out_channels, 3, 1, 1), nn.ReLU())],
                         nn.MaxPool2d(3, 2))


class VGG(d2l.Classifier):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        head = [nn.Flatten()]
        for width in (4096, 4096):
            head += [nn.LazyLinear(width), nn.ReLU(), nn.Dropout(0.5)]
        self.net = nn.Sequential(*(vgg_block(*a) for a in arch), *head, nn.LazyLinear(num_classes))


# %% 8.2/3
VGG16_ARCH = ((2, 64), (3, 128), (3, 256), (3, 512), (3, 512))
VGG19_ARCH = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))


def vgg(arch, num_classes=10):
    return VGG(arch)


# %% 8.2/4
class VGGSmall(d2l.Classifier):   # the book's VGG shrunk: one convolution before most poolings
    def __init__(self, input_size, num_classes=10):
        super().__init__()
        blocks = [vgg_block(1, 16), vgg_block(1, 32), vgg_block(2, 64)]
        self.net = nn.Sequential(*blocks, nn.Flatten(), nn.LazyLinear(num_classes))
