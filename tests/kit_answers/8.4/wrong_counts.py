"""A wrong answer to 8.4 (a 5×5 branch kept, no shortcut, the book's stem at 28×28, VGG-16's count), from the reference for 8.4 Multi-branch networks (GoogLeNet): the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 8.4/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. Nothing trains at import time; the counts of 8.4/4 are
measured on PyTorch's `meta` device (no arithmetic).
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% The book's code
class Inception(nn.Module):
    # c1--c4 are the number of output channels for each branch
    def __init__(self, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        # Branch 1
        self.b1_1 = nn.LazyConv2d(c1, kernel_size=1)
        # Branch 2
        self.b2_1 = nn.LazyConv2d(c2[0], kernel_size=1)
        self.b2_2 = nn.LazyConv2d(c2[1], kernel_size=3, padding=1)
        # Branch 3
        self.b3_1 = nn.LazyConv2d(c3[0], kernel_size=1)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        # Branch 4
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.LazyConv2d(c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


class GoogleNet(d2l.Classifier):
    def b1(self):
        return nn.Sequential(
            nn.LazyConv2d(64, kernel_size=7, stride=2, padding=3),
            nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


@d2l.add_to_class(GoogleNet)
def b2(self):
    return nn.Sequential(
        nn.LazyConv2d(64, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


@d2l.add_to_class(GoogleNet)
def b3(self):
    return nn.Sequential(Inception(64, (96, 128), (16, 32), 32),
                         Inception(128, (128, 192), (32, 96), 64),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


@d2l.add_to_class(GoogleNet)
def b4(self):
    return nn.Sequential(Inception(192, (96, 208), (16, 48), 64),
                         Inception(160, (112, 224), (24, 64), 64),
                         Inception(128, (128, 256), (24, 64), 64),
                         Inception(112, (144, 288), (32, 64), 64),
                         Inception(256, (160, 320), (32, 128), 128),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


@d2l.add_to_class(GoogleNet)
def b5(self):
    return nn.Sequential(Inception(256, (160, 320), (32, 128), 128),
                         Inception(384, (192, 384), (48, 128), 128),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


@d2l.add_to_class(GoogleNet)
def __init__(self, lr=0.1, num_classes=10):
    super(GoogleNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.Sequential(self.b1(), self.b2(), self.b3(), self.b4(),
                             self.b5(), nn.LazyLinear(num_classes))
    self.net.apply(d2l.init_cnn)


def train_googlenet(max_epochs=10, batch_size=128, lr=0.01):
    """The book's training run at 96×96 (hours on a CPU, so it is not run while grading)."""
    model = GoogleNet(lr=lr)
    trainer = d2l.Trainer(max_epochs=max_epochs, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=batch_size, resize=(96, 96))
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    return model


# %% 8.4/1.1
def conv_bn_relu(channels, kernel_size):
    """A convolution (its window padded to keep the size), batch normalisation, then ReLU."""
    return nn.Sequential(nn.LazyConv2d(channels, kernel_size, padding=kernel_size // 2),
                         nn.LazyBatchNorm2d(), nn.ReLU())


class InceptionBN(nn.Module):
    """The Inception block with batch normalisation after every convolution, before its ReLU."""
    def __init__(self, c1, c2, c3, c4):
        super().__init__()
        self.b1 = conv_bn_relu(c1, 1)
        self.b2 = nn.Sequential(conv_bn_relu(c2[0], 1), conv_bn_relu(c2[1], 3))
        self.b3 = nn.Sequential(conv_bn_relu(c3[0], 1), conv_bn_relu(c3[1], 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_bn_relu(c4, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


# %% 8.4/1.2
class InceptionFactorized(Inception):
    """Inception v2/v3's change: the 5×5 convolution of branch 3 becomes two stacked 3×3 convolutions
    (the same 5×5 receptive field with 2·9 instead of 25 weights per channel pair)."""
    def __init__(self, c1, c2, c3, c4):
        super().__init__(c1, c2, c3, c4)
        self.b3_2 = nn.LazyConv2d(c3[1], kernel_size=5, padding=2)
        self.b3_3 = nn.LazyConv2d(c3[1], kernel_size=3, padding=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_3(F.relu(self.b3_2(F.relu(self.b3_1(x))))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)


# %% 8.4/1.3
def label_smoothing_loss(logits, y, eps):
    """Cross-entropy against (1 - eps)·one_hot(y) + eps/K: the uniform part spreads over all K classes."""
    log_p = F.log_softmax(logits, dim=1)
    target = torch.full_like(log_p, eps / logits.shape[1])
    target.scatter_add_(1, y[:, None], torch.full_like(log_p[:, :1], 1 - eps))
    return -(target * log_p).sum(dim=1).mean()


# %% 8.4/1.4
class ResidualInception(Inception):
    """The Inception block plus its input (ResNet's identity shortcut). The input must then have as many
    channels as the block's output; with use_1x1conv=True a 1×1 convolution projects it instead."""
    def __init__(self, c1, c2, c3, c4, use_1x1conv=False):
        super().__init__(c1, c2, c3, c4)
        self.project = nn.LazyConv2d(c1 + c2[1] + c3[1] + c4, kernel_size=1) if use_1x1conv else None

    def forward(self, x):
        shortcut = x if self.project is None else self.project(x)
        return super().forward(x)


# %% 8.4/2
def smallest_input(model_class, largest=256):
    """The smallest side s for which the model runs on a 1×s×s image (measured on the meta device)."""
    for side in range(1, largest + 1):
        try:
            with torch.device("meta"):
                model_class()(torch.zeros(1, 1, side, side))
            return side
        except RuntimeError:
            continue


googlenet_min_size = smallest_input(GoogleNet)


# %% 8.4/3
class GoogLeNet28(GoogleNet):
    """GoogLeNet for native 28×28 images: the stem keeps the full resolution (one 3×3 convolution, no
    stride, no pooling), so the body sees 28→14→7→4 like the book's network sees 96→...→3; the body and
    the head (global average pooling, one dense layer) stay as they are."""
    pass


# %% [markdown] 8.4/3
# Stem: the book's 7×7 stride-2 convolution and max pooling shrink 28×28 to 7×7 before the body, so the
# fourth and fifth stages see 1×1 maps and their 3×3 and 5×5 branches see only padding. A 3×3 stem without
# stride or pooling keeps 28×28. Body: unchanged (its three stride-2 poolings give 14, 7 and 4). Head:
# unchanged; global average pooling adapts to any map size.


# %% 8.4/4
class AlexNet(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(96, kernel_size=11, stride=4, padding=1),
            nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(256, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(384, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2), nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(num_classes))
        self.net.apply(d2l.init_cnn)


def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.LazyConv2d(out_channels, kernel_size=3, padding=1))
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
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(num_classes))
        self.net.apply(d2l.init_cnn)


VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def nin_block(out_channels, kernel_size, strides, padding):
    return nn.Sequential(
        nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU(),
        nn.LazyConv2d(out_channels, kernel_size=1), nn.ReLU())


class NiN(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nin_block(96, kernel_size=11, strides=4, padding=0), nn.MaxPool2d(3, stride=2),
            nin_block(256, kernel_size=5, strides=1, padding=2), nn.MaxPool2d(3, stride=2),
            nin_block(384, kernel_size=3, strides=1, padding=1), nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.5),
            nin_block(num_classes, kernel_size=3, strides=1, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
        self.net.apply(d2l.init_cnn)


def parameter_count(model):
    """Parameters after one forward pass on a 1×224×224 image (lazy layers need it), on the meta device."""
    with torch.device("meta"):
        model(torch.zeros(1, 1, 224, 224))
    return sum(p.numel() for p in model.parameters())


with torch.device("meta"):
    param_counts_all = {"AlexNet": parameter_count(AlexNet()), "VGG": parameter_count(VGG(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)))),
                        "NiN": parameter_count(NiN()), "GoogLeNet": parameter_count(GoogleNet())}

# %% [markdown] 8.4/4
# AlexNet ≈ 46.8 M and VGG-11 ≈ 128.8 M parameters, almost all in their dense layers on the flattened
# 256×5×5 or 512×7×7 maps (4096-wide); NiN ≈ 2.0 M and GoogLeNet ≈ 6.0 M. NiN and GoogLeNet end with
# global average pooling, so no large dense layer is needed (GoogLeNet's one dense layer has 1024×10
# weights), and 1×1 convolutions shrink the channels before the expensive 3×3 and 5×5 convolutions.

# %% [markdown] 8.4/5
# GoogLeNet needs about 1.5 G multiply-adds per 224×224 image, more than AlexNet's 0.9 G, with 8× fewer
# parameters: its work is dominated by convolutions with high arithmetic intensity (many operations per
# weight), while AlexNet's dense layers need a lot of memory bandwidth and parameter storage for little
# compute. An accelerator for such networks wants much compute and fast on-chip memory (caches, SRAM) for
# activations rather than huge DRAM bandwidth for weights; the many small branches and 1×1 convolutions
# favour units specialised for matrix products and fused convolution-ReLU-concatenation operations.
