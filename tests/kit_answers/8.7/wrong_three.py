"""8.7, wrong answers (from tests/test_section_8_7.py): a count as a string, one dense layer too few per
block, the growth rate ignored, transitions keeping the channels, zeros instead of the inputs in the DenseMLP."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.7/2
param_counts = {"densenet": 758226, "resnet18": "11.2M"}


# %% 8.7/4
DENSENET_BLOCKS = dict(zip((121, 169, 201), ([6, 12, 24, 16], [6, 12, 32, 32], [6, 12, 48, 32])))

class Block(nn.Module):   # keeps a list of feature maps and concatenates it for every layer (torchvision's way)
    def __init__(self, n, c, k):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(
            nn.BatchNorm2d(c + i * k), nn.ReLU(inplace=True), nn.Conv2d(c + i * k, 4 * k, 1, bias=False),
            nn.BatchNorm2d(4 * k), nn.ReLU(inplace=True), nn.Conv2d(4 * k, k, 3, padding=1, bias=False))
            for i in range(n - 1))
    def forward(self, X):
        features = [X]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)

def densenet(blocks, growth_rate=32, num_classes=10):
    k, c = 32, 2 * growth_rate
    parts = [nn.Conv2d(1, c, 7, 2, 3, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    for i, n in enumerate(blocks):
        parts.append(Block(n, c, k))
        c += (n - 1) * k
        if i + 1 < len(blocks):
            parts += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False), nn.AvgPool2d(2)]
            c //= 2
    return nn.Sequential(*parts, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c, num_classes))


# %% 8.7/5
class DenseMLP(nn.Module):   # lazy layers, registered by name
    def __init__(self, num_inputs, num_layers=3, growth=32, num_outputs=1):
        super().__init__()
        self.num_layers = num_layers
        for i in range(num_layers):
            setattr(self, f"dense{i}", nn.Linear(num_inputs + i * growth, growth))
        self.output = nn.Linear(num_inputs + num_layers * growth, num_outputs)

    def forward(self, X):
        for i in range(self.num_layers):
            X = torch.cat([X * 0, torch.relu(getattr(self, f"dense{i}")(X))], 1)
        return self.output(X)
