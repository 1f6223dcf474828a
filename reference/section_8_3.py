"""Reference for 8.3 Network in Network (NiN): the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 8.3/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. Nothing trains at import time.
"""
# %%
import torch
from torch import nn
from d2l import torch as d2l


# %% The book's code
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
            nin_block(96, kernel_size=11, strides=4, padding=0),
            nn.MaxPool2d(3, stride=2),
            nin_block(256, kernel_size=5, strides=1, padding=2),
            nn.MaxPool2d(3, stride=2),
            nin_block(384, kernel_size=3, strides=1, padding=1),
            nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.5),
            nin_block(num_classes, kernel_size=3, strides=1, padding=1),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten())
        self.net.apply(d2l.init_cnn)


def train_nin(max_epochs=10, batch_size=128, lr=0.05):
    """The book's training run (hours on a CPU at 224×224, so it is not run while grading)."""
    model = NiN(lr=lr)
    trainer = d2l.Trainer(max_epochs=max_epochs, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=batch_size, resize=(224, 224))
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
    trainer.fit(model, data)
    return model


# %% 8.3/1
def nin_block_variant(out_channels, kernel_size, strides, padding, n_1x1=2, kernel_1x1=1):
    """A NiN block whose first convolution is followed by `n_1x1` "1×1" convolutions of width
    `kernel_1x1` (padded so that they keep the spatial size)."""
    layers = [nn.LazyConv2d(out_channels, kernel_size, strides, padding), nn.ReLU()]
    for _ in range(n_1x1):
        layers += [nn.LazyConv2d(out_channels, kernel_size=kernel_1x1, padding=kernel_1x1 // 2), nn.ReLU()]
    return nn.Sequential(*layers)


class NiNVariant(d2l.Classifier):
    """The book's NiN with a configurable number and width of the per-pixel convolutions, and either
    global average pooling ("gap") or a fully connected layer ("fc") on the last block's output."""
    def __init__(self, lr=0.1, num_classes=10, n_1x1=2, kernel_1x1=1, head="gap"):
        super().__init__()
        self.save_hyperparameters()
        block = lambda c, k, s, p: nin_block_variant(c, k, s, p, n_1x1, kernel_1x1)
        if head == "gap":
            top = [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()]
        elif head == "fc":
            top = [nn.Flatten(), nn.LazyLinear(num_classes)]
        else:
            raise ValueError(f"head must be 'gap' or 'fc', not {head!r}")
        self.net = nn.Sequential(
            block(96, 11, 4, 0), nn.MaxPool2d(3, stride=2),
            block(256, 5, 1, 2), nn.MaxPool2d(3, stride=2),
            block(384, 3, 1, 1), nn.MaxPool2d(3, stride=2),
            nn.Dropout(0.5),
            block(num_classes, 3, 1, 1),
            *top)


def nin(n_1x1=2, kernel_1x1=1, head="gap", num_classes=10):
    return NiNVariant(num_classes=num_classes, n_1x1=n_1x1, kernel_1x1=kernel_1x1, head=head)


# %% [markdown] 8.3/1
# The two 1×1 convolutions after each spatial convolution make a small two-layer MLP that runs at every
# pixel across the channels: one adds a per-pixel non-linearity, two give the per-pixel MLP a hidden layer.
# With one, the network has 8 convolutions and fewer parameters (1.99 M → 1.77 M) and learns somewhat less
# well; with three, 16 convolutions and about 2.22 M parameters, more computation and only small gains,
# and the deeper plain network is harder to train (no batch normalisation).

# %% [markdown] 8.3/2
# With 3×3 windows (padding 1) the "per-pixel MLP" turns into ordinary convolutions: each such layer has
# 9× the weights of a 1×1 layer, the network grows from 2.0 M to about 5.5 M parameters and its compute
# about three-fold (1.5 → 4.5 GFLOPs), while the receptive field grows; it becomes a VGG-like network that
# is slower to train.

# %% [markdown] 8.3/3
# Literally replacing the global average pooling by one fully connected layer on the last block's
# 10×5×5 map adds only 2,510 parameters and almost no time, but the head now depends on the input size
# and position and overfits more easily. A dense head on the wide 384×5×5 map (as AlexNet/VGG do) adds
# millions of parameters, slows training and overfits; global average pooling needs no parameters.


# %% 8.3/4
nin_params = 1_992_166      # counted from the model: sum(p.numel() for p in NiN().parameters()), 224×224
nin_flops = {"total": 1_524_594_704, "unit": "FLOPs"}    # FlopCounterMode for one 1×224×224 image

# %% [markdown] 8.3/4
# 4.1 About 1.99 M parameters (8 MB in float32), all in the 12 convolutions. 4.2 About 0.76 G
# multiply-adds (1.52 GFLOPs) per 224×224 image, most in the first blocks. 4.3 Training keeps the
# parameters, their gradients and the optimizer state (3 × 8 MB for SGD with momentum) plus every layer's
# activations for the backward pass (about 1.3 M values per image, 5 MB, times the batch size).
# 4.4 Prediction needs the parameters plus only the activations of two consecutive layers at a time.

# %% [markdown] 8.3/5
# Going from 384 channels straight to 10 in one block is a severe bottleneck: the representation shrinks
# 38-fold at once, so information the classes need can be lost, and the last block must turn generic
# features into class scores with few layers; a gradual reduction (or a wider last stage) keeps more.


# %% 8.3/6
FAMILY = {12: (2, 2, 2, 2), 16: (3, 3, 3, 3), 20: (4, 4, 4, 4)}   # 1×1 convolutions per block


def nin_family(depth, num_classes=10):
    """NiN-12/16/20 as VGG-11/16/19 do it: the same four stages, more per-pixel layers per stage as the
    network deepens; `depth` counts the convolution layers (NiN has no dense layer)."""
    if depth not in FAMILY:
        raise ValueError(f"depth must be one of {sorted(FAMILY)}")
    stages = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (num_classes, 3, 1, 1))
    layers = []
    for k, ((c, size, stride, pad), n_1x1) in enumerate(zip(stages, FAMILY[depth])):
        if k == 3:
            layers.append(nn.Dropout(0.5))
        layers.append(nin_block_variant(c, size, stride, pad, n_1x1))
        if k < 3:
            layers.append(nn.MaxPool2d(3, stride=2))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
