"""7.6, wrong: the book's sigmoid LeNet handed in as the modern one (7.6/1 and its training fail), a dense
network without convolutions as the improved one (below the reference's improved network), the convolutions'
outputs instead of the activations (7.6/4 fails)."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 7.6/1
class ModernLeNet(d2l.Classifier):   # the section's LeNet, unchanged
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))


# %% 7.6/2
class ImprovedLeNet(nn.Module):   # no convolution at all
    def __init__(self, hidden=256):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, X):
        return self.net(X)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


# %% 7.6/3
def mnist_model():
    return ImprovedLeNet()


# %% 7.6/4
def first_two_activations(model, X):   # the convolutions' outputs: before the activation function
    first = model.net[0](X)
    return first, model.net[3](model.net[2](model.net[1](first)))
