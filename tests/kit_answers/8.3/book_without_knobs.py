"""8.3, the book's NiN typed as it is, wrapped without using the knobs (from tests/test_section_8_3.py); counts
off by 1000 and MACs labelled FLOPs; a family that ignores the depth."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.3/1
def nin_block(out_channels, kernel_size, strides, padding, n_1x1=2, kernel_1x1=1):
    layers = [nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU()]
    layers += [m for _ in range(n_1x1)
               for m in (nn.LazyConv2d(out_channels, kernel_1x1, padding="same"), nn.ReLU())]
    return nn.Sequential(*layers)

class NiN(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10, **knobs):
        super().__init__()
        self.save_hyperparameters()
        head = knobs.pop("head", "gap")
        self.net = nn.Sequential(
            nin_block(96, 11, 4, 0, **knobs), nn.MaxPool2d(3, stride=2),
            nin_block(256, 5, 1, 2, **knobs), nn.MaxPool2d(3, stride=2),
            nin_block(384, 3, 1, 1, **knobs), nn.MaxPool2d(3, stride=2), nn.Dropout(0.5),
            nin_block(num_classes, 3, 1, 1, **knobs))
        self.net.append(nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes)) if head == "fc" else
                        nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()))
        self.net.apply(d2l.init_cnn)

def nin(n_1x1=2, kernel_1x1=1, head="gap", num_classes=10):
    return NiN(num_classes=num_classes, )


# %% 8.3/4
nin_params = 1.99e9
nin_flops = {"total": 762_297_352, "unit": "FLOPs"}


# %% 8.3/6
def nin_family(depth, num_classes=10):   # extra 1×1 layers go to the wide later stages first, as VGG does
    per_block = {12: (2, 2, 2, 2), 16: (2, 2, 4, 4), 20: (2, 4, 5, 5)}[12]
    stages = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (num_classes, 3, 1, 1))
    layers = []
    for (c, k, s, p), n in zip(stages, per_block):
        layers += [nn.LazyConv2d(c, k, s, p), nn.ReLU()]
        layers += [m for _ in range(n) for m in (nn.LazyConv2d(c, 1), nn.ReLU())]
        layers.append(nn.MaxPool2d(3, 2) if c != num_classes else nn.AdaptiveAvgPool2d(1))
    return nn.Sequential(*layers, nn.Flatten())
