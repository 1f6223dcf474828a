"""8.7, wrong answers (from tests/test_section_8_7.py): DenseNet-121's count for the book's DenseNet, no
global pooling before the head, a plain MLP without concatenation."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.7/2
param_counts = {"densenet": 6957834, "resnet18": 11178378}


# %% 8.7/4
DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}

class DenseLayer(nn.Module):   # lazy layers with biases, like the book's conv_block
    def __init__(self, k):
        super().__init__()
        self.body = nn.Sequential(nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(4 * k, 1),
                                  nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(k, 3, padding=1))
    def forward(self, X):
        return torch.cat((X, self.body(X)), dim=1)

class DenseNetBC(nn.Module):
    def __init__(self, blocks, k, num_classes):
        super().__init__()
        c = 2 * k
        layers = [nn.LazyConv2d(c, 7, stride=2, padding=3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        for i, n in enumerate(blocks):
            layers += [DenseLayer(k) for _ in range(n)]
            c += n * k
            if i < len(blocks) - 1:
                c //= 2
                layers += [nn.LazyBatchNorm2d(), nn.ReLU(), nn.LazyConv2d(c, 1), nn.AvgPool2d(2, 2)]
        layers += [nn.LazyBatchNorm2d(), nn.ReLU(), nn.Flatten(), nn.LazyLinear(num_classes)]
        self.net = nn.Sequential(*layers)
    def forward(self, X):
        return self.net(X)

def densenet(blocks, growth_rate=32, num_classes=10):
    return DenseNetBC(blocks, growth_rate, num_classes)


# %% 8.7/5
class DenseMLP(nn.Module):   # no concatenation at all
    def __init__(self, num_inputs, num_layers=3, growth=32, num_outputs=1):
        super().__init__()
        layers, width = [], num_inputs
        for _ in range(num_layers):
            layers += [nn.Linear(width, growth), nn.ReLU()]
            width = growth
        self.net = nn.Sequential(*layers, nn.Linear(width, num_outputs))
    def forward(self, X):
        return self.net(X)
