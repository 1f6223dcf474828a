"""8.1, wrong: the parameter split swapped, MACs labelled as FLOPs, a 'small AlexNet' without convolutions,
an AlexNet28 without dropout, and a LeNetDropout that keeps the sigmoid and average pooling (it trains no
faster than the sigmoid LeNet)."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.1/1.1
alexnet_param_split = {'conv': 43_040_778, 'fc': 3_723_968}

# %% 8.1/1.2
alexnet_flop_split = {'conv': 895_113_600, 'fc': 43_032_576, 'unit': 'FLOPs'}


# %% 8.1/5.1
def SmallAlexNet():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


# %% 8.1/5.2
class AlexNet28(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(32, 3, padding=1), nn.ReLU(), nn.LazyConv2d(32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.LazyConv2d(64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.LazyLinear(128), nn.ReLU(), nn.LazyLinear(num_classes))


# %% 8.1/7
class LeNetDropout(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Sigmoid(),
            nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.Sigmoid(), nn.Dropout(0.3), nn.Linear(120, 84), nn.Sigmoid(), nn.Dropout(0.3),
            nn.Linear(84, num_classes))

    def forward(self, X):
        return self.net(X)
