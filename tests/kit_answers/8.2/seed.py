"""8.2, the student seed's VGG as typed (from tests/test_section_8_2.py): nn.Conv2d and nn.Linear without their
input sizes, so nothing builds; no other answer."""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% 8.2/2
def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG(d2l.Classifier):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        conv_blks = []
        for (num_convs, out_channels) in arch:
            conv_blks.append(vgg_block(num_convs, out_channels))
        self.net = nn.Sequential(
            *conv_blks, nn.Flatten(),
            nn.Linear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(num_classes))
        self.net.apply(d2l.init_cnn)
