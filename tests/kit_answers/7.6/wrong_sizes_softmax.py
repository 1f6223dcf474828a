"""7.6, wrong: a modern LeNet with 100 outputs whatever num_classes says (shape and parameter count fail),
an improved network that ends with a softmax (half marks at most), an MNIST model trained with learning
rate 0 (it does not learn), and the activations taken after the pooling (7.6/4 fails)."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 7.6/1
class ModernLeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 100))

    def forward(self, X):
        return self.net(X)


# %% 7.6/2
class ImprovedLeNet(nn.Module):   # two 5x5 convolutions with batch normalisation, Adam; a softmax at the end
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(32 * 7 * 7, num_classes), nn.Softmax(dim=1))

    def forward(self, X):
        return self.classifier(self.features(X).flatten(1))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


# %% 7.6/3
class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, X):
        return self.net(X)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def mnist_model():
    return Frozen()


# %% 7.6/4
def first_two_activations(model, X):
    return model.net[:3](X), model.net[:6](X)
