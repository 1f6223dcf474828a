"""8.7, right answers written otherwise (from tests/test_section_8_7.py): counts as a tensor and a float,
a DenseNet keeping a list of feature maps, a DenseMLP concatenating a list of features."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.7/2
param_counts = dict(densenet=torch.tensor(758226), resnet18=float(11_178_378))


# %% 8.7/4
DENSENET_BLOCKS = dict(zip((121, 169, 201), ([6, 12, 24, 16], [6, 12, 32, 32], [6, 12, 48, 32])))

class Block(nn.Module):   # keeps a list of feature maps and concatenates it for every layer (torchvision's way)
    def __init__(self, n, c, k):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(
            nn.BatchNorm2d(c + i * k), nn.ReLU(inplace=True), nn.Conv2d(c + i * k, 4 * k, 1, bias=False),
            nn.BatchNorm2d(4 * k), nn.ReLU(inplace=True), nn.Conv2d(4 * k, k, 3, padding=1, bias=False))
            for i in range(n))
    def forward(self, X):
        features = [X]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)

def densenet(blocks, growth_rate=32, num_classes=10):
    k, c = growth_rate, 2 * growth_rate
    parts = [nn.Conv2d(1, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    for i, n in enumerate(blocks):
        parts.append(Block(n, c, k))
        c += n * k
        if i + 1 < len(blocks):
            parts += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
            c //= 2
    return nn.Sequential(*parts, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c, num_classes))


# %% 8.7/5
class DenseMLP(nn.Module):   # a list of all features so far, concatenated for every layer
    def __init__(self, num_inputs, num_layers=3, growth=32, num_outputs=1):
        super().__init__()
        widths = [num_inputs + i * growth for i in range(num_layers + 1)]
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(w, growth), nn.ReLU()) for w in widths[:-1])
        self.head = nn.Linear(widths[-1], num_outputs)

    def forward(self, X):
        features = [X]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=-1)))
        return self.head(torch.cat(features, dim=-1))
