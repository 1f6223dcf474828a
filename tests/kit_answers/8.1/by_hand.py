"""8.1, right by other routes: counts by hand (weights only, within the tolerance), MACs said so, a factory
function for the small AlexNet, five strided convolutions with Dropout2d for AlexNet28, and a LeNetDropout
written with plain layers."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.1/1.1
alexnet_param_split = {'conv': 96*11*11 + 256*96*25 + 384*256*9 + 384*384*9 + 256*384*9,
                       'fc': 6400*4096 + 4096*4096 + 4096*10}

# %% 8.1/1.2
alexnet_flop_split = {'conv': 895_113_600, 'fc': 43_032_576, 'unit': 'MACs'}


# %% 8.1/5.1
def SmallAlexNet():
    return nn.Sequential(nn.LazyConv2d(24, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
                         nn.LazyConv2d(48, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.LazyLinear(64), nn.ReLU(), nn.Dropout(0.3), nn.LazyLinear(10))


# %% 8.1/5.2
class AlexNet28(nn.Module):
    def __init__(self):
        super().__init__()
        widths = [1, 48, 96, 128, 128, 96]
        layers = []
        for i in range(5):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2 if i == 0 else 1, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.Dropout2d(0.2), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(96 * 7 * 7, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, X):
        return self.classifier(self.features(X))


# %% 8.1/7
class LeNetDropout(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Dropout(0.3), nn.Linear(120, 84), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(84, num_classes))

    def forward(self, X):
        return self.net(X)
