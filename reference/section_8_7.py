"""Reference for 8.7 Densely connected networks (DenseNet): the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 8.7/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. Nothing here trains at import time.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% The book's code
def conv_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    def __init__(self, num_convs, num_channels):
        super(DenseBlock, self).__init__()
        layer = []
        for i in range(num_convs):
            layer.append(conv_block(num_channels))
        self.net = nn.Sequential(*layer)

    def forward(self, X):
        for blk in self.net:
            Y = blk(X)
            # Concatenate input and output of each block along the channels
            X = torch.cat((X, Y), dim=1)
        return X


def transition_block(num_channels):
    return nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.LazyConv2d(num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNet(d2l.Classifier):
    def b1(self):
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


@d2l.add_to_class(DenseNet)
def __init__(self, num_channels=64, growth_rate=32, arch=(4, 4, 4, 4),
             lr=0.1, num_classes=10):
    super(DenseNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential(self.b1())
    for i, num_convs in enumerate(arch):
        self.net.add_module(f'dense_blk{i+1}', DenseBlock(num_convs,
                                                          growth_rate))
        # The number of output channels in the previous dense block
        num_channels += num_convs * growth_rate
        # A transition layer that halves the number of channels is added
        # between the dense blocks
        if i != len(arch) - 1:
            num_channels //= 2
            self.net.add_module(f'tran_blk{i+1}', transition_block(
                num_channels))
    self.net.add_module('last', nn.Sequential(
        nn.LazyBatchNorm2d(), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.LazyLinear(num_classes)))
    self.net.apply(d2l.init_cnn)


def train_densenet(max_epochs=10, batch_size=128):
    """The book's training run (far too long for a CPU grader: not run while grading)."""
    model = DenseNet(lr=0.01)
    trainer = d2l.Trainer(max_epochs=max_epochs, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=batch_size, resize=(96, 96))
    trainer.fit(model, data)
    return model


# The book's ResNet-18 of section 8.6, for the comparison of 8.7/2.
class Residual(nn.Module):
    """The Residual block of ResNet models."""
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


class ResNet(d2l.Classifier):
    def b1(self):
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def block(self, num_residuals, num_channels, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels))
        return nn.Sequential(*blk)

    def __init__(self, arch, lr=0.1, num_classes=10):
        super(ResNet, self).__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(self.b1())
        for i, b in enumerate(arch):
            self.net.add_module(f'b{i+2}', self.block(*b, first_block=(i == 0)))
        self.net.add_module('last', nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.LazyLinear(num_classes)))
        self.net.apply(d2l.init_cnn)


class ResNet18(ResNet):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__(((2, 64), (2, 128), (2, 256), (2, 512)), lr, num_classes)


# %% [markdown] 8.7/1
# A transition layer has to shrink the feature maps between dense blocks. Average pooling does it
# smoothly: every activation of a 2×2 window contributes to the output (and receives gradient), so the
# information of all the concatenated features is kept in a blurred form. Max pooling would keep only
# the strongest response and drop three quarters of the values, which fits detecting a feature but not
# handing every earlier layer's features on to the later layers, the point of a dense block. The 1×1
# convolution before it already mixes channels linearly; averaging commutes with that linear map.


# %% 8.7/2
def _parameter_count(model, input_shape=(2, 1, 32, 32)):
    model(torch.zeros(input_shape))          # materialises the lazy layers
    return sum(p.numel() for p in model.parameters())


param_counts = {"densenet": _parameter_count(DenseNet()), "resnet18": _parameter_count(ResNet18())}

# %% [markdown] 8.7/2
# The book's DenseNet has about 0.76 M parameters, its ResNet-18 about 11.2 M. Each dense layer adds only
# `growth_rate` = 32 channels with 3×3 kernels, whereas ResNet's convolutions map 64 to 512 channels to as
# many channels again, and the number of 3×3 weights grows with in × out channels. Dense layers can stay
# narrow because every layer sees all earlier features through concatenation (feature reuse), so they
# need not relearn them; the transition layers' 1×1 convolutions halve the channels (compression) before
# the next block, and the classifier sees a narrow feature vector.


# %% [markdown] 8.7/3
# Yes for a naive implementation: each concatenation allocates a new tensor holding all earlier features
# again, and batch norm / ReLU outputs of each layer are kept for backward, so the stored activations
# grow quadratically with the number of layers in a block. At 224×224 with batch 128 the book's DenseNet
# needs several times the activation memory of a ResNet with more parameters (measure with
# torch.cuda.max_memory_allocated after one training step). Remedies: pre-allocate one shared buffer per
# block that every layer writes its new channels into (no copies per concatenation), and recompute the
# cheap batch-norm/ReLU/concatenation outputs in the backward pass instead of storing them (gradient
# checkpointing, torch.utils.checkpoint), which needs a framework that can free intermediate results
# and run a segment's forward again during backward.


# %% 8.7/4
DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


class DenseLayer(nn.Module):
    """DenseNet-B layer: BN-ReLU-1×1 conv (4k channels), BN-ReLU-3×3 conv (k channels); the output is the
    input with the k new channels appended."""
    def __init__(self, in_channels, growth_rate):
        super().__init__()
        self.bottleneck = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(),
            nn.Conv2d(in_channels, 4 * growth_rate, kernel_size=1, bias=False))
        self.conv = nn.Sequential(
            nn.BatchNorm2d(4 * growth_rate), nn.ReLU(),
            nn.Conv2d(4 * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False))

    def forward(self, X):
        return torch.cat((X, self.conv(self.bottleneck(X))), dim=1)


def densenet(blocks, growth_rate=32, num_classes=10):
    """DenseNet-BC of the paper's Table 1 for 1-channel images: a 7×7 stem with 2k channels, dense blocks
    of `blocks[i]` layers, transitions halving the channels, global average pooling and a linear head."""
    channels = 2 * growth_rate
    layers = [nn.Conv2d(1, channels, kernel_size=7, stride=2, padding=3, bias=False),
              nn.BatchNorm2d(channels), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)]
    for i, num_layers in enumerate(blocks):
        for _ in range(num_layers):
            layers.append(DenseLayer(channels, growth_rate))
            channels += growth_rate
        if i != len(blocks) - 1:
            layers += [nn.BatchNorm2d(channels), nn.ReLU(),
                       nn.Conv2d(channels, channels // 2, kernel_size=1, bias=False),
                       nn.AvgPool2d(kernel_size=2, stride=2)]
            channels //= 2
    layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
               nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


# %% 8.7/5
class DenseMLP(nn.Module):
    """The DenseNet idea for an MLP: hidden layer i sees the inputs and the outputs of all earlier hidden
    layers, concatenated; the output layer sees all of them."""
    def __init__(self, num_inputs, num_layers=3, growth=32, num_outputs=1):
        super().__init__()
        self.hidden = nn.ModuleList(
            nn.Linear(num_inputs + i * growth, growth) for i in range(num_layers))
        self.out = nn.Linear(num_inputs + num_layers * growth, num_outputs)

    def forward(self, X):
        for layer in self.hidden:
            X = torch.cat((X, F.relu(layer(X))), dim=1)
        return self.out(X)
