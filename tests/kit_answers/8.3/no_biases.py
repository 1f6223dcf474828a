"""8.3, convolutions without biases (from tests/test_section_8_3.py); counts given as rounded floats in
MACs; a family whose 1×1 layers are 3×3."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.3/1
def block(c_in, c_out, k, s, p, n_1x1, k1):   # explicit in-channels, no lazy layers
    layers = [nn.Conv2d(c_in, c_out, k, s, p, bias=False), nn.ReLU()]
    for _ in range(n_1x1):
        layers += [nn.Conv2d(c_out, c_out, k1, padding=(k1 - 1) // 2, bias=False), nn.ReLU()]
    return nn.Sequential(*layers)

class MyNiN(nn.Module):
    def __init__(self, n_1x1, kernel_1x1, head, num_classes):
        super().__init__()
        b = lambda *a: block(*a, n_1x1, kernel_1x1)
        self.features = nn.Sequential(
            b(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2), b(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
            b(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5), b(384, num_classes, 3, 1, 1))
        self.head = head
        self.fc = nn.Linear(num_classes * 25, num_classes) if head == "fc" else None
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, X):
        X = self.features(X)
        return self.fc(X.flatten(1)) if self.head == "fc" else self.gap(X).flatten(1)

def nin(n_1x1=2, kernel_1x1=1, head="gap", num_classes=10):
    return MyNiN(n_1x1, kernel_1x1, head, num_classes)


# %% 8.3/4
nin_params = 1.99e6
nin_flops = {"total": 0.76e9, "unit": "MACs"}


# %% 8.3/6
def nin_family(depth, num_classes=10):   # extra 1×1 layers go to the wide later stages first, as VGG does
    per_block = {12: (2, 2, 2, 2), 16: (2, 2, 4, 4), 20: (2, 4, 5, 5)}[depth]
    stages = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (num_classes, 3, 1, 1))
    layers = []
    for (c, k, s, p), n in zip(stages, per_block):
        layers += [nn.LazyConv2d(c, k, s, p), nn.ReLU()]
        layers += [m for _ in range(n) for m in (nn.LazyConv2d(c, 3, padding=1), nn.ReLU())]
        layers.append(nn.MaxPool2d(3, 2) if c != num_classes else nn.AdaptiveAvgPool2d(1))
    return nn.Sequential(*layers, nn.Flatten())
