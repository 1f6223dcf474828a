"""A wrong answer to 8.5 (lite norms that use batch statistics in evaluation and the root mean square, momentum reversed, trainable fixed γ and β), from the reference for 8.5 Batch normalization: the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 8.5/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. Nothing here trains at import time: the grader
trains the networks itself (graders/section_8_5.py).
"""
# %%
import copy

import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% The book's code
class LeNet(d2l.Classifier):
    """The LeNet of 7.6 (sigmoid, average pooling): the network without batch norm that 8.5/2 compares with."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))


class BNLeNetScratch(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5), BatchNorm(6, num_dims=4),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), BatchNorm(16, num_dims=4),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120),
            BatchNorm(120, num_dims=2), nn.Sigmoid(), nn.LazyLinear(84),
            BatchNorm(84, num_dims=2), nn.Sigmoid(),
            nn.LazyLinear(num_classes))


# %% 8.5/1
def without_bias(net):
    """A copy of the Sequential `net` whose convolution and linear layers directly followed by batch
    norm have no bias: batch norm subtracts the batch mean, which removes any constant the layer adds."""
    layers = list(copy.deepcopy(net))
    for i, layer in enumerate(layers[:-1]):
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and layer.bias is not None and \
                isinstance(layers[i + 1], nn.modules.batchnorm._BatchNorm):
            layer.bias = None
    return nn.Sequential(*layers)

# %% [markdown] 8.5/1
# Yes. In training mode batch norm subtracts the minibatch mean of every channel, and a bias adds the
# same constant to every value of its channel, so the mean absorbs it exactly: the output is the same
# with or without it, and its gradient is zero. The shift β of batch norm plays the bias's role. (In
# evaluation mode the running mean has absorbed the bias as well, so a network trained without it gives
# the same predictions.)


# %% 8.5/2
class BNLeNet(d2l.Classifier):
    """The concise batch-norm LeNet of the section."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), nn.LazyBatchNorm1d(),
            nn.Sigmoid(), nn.LazyLinear(84), nn.LazyBatchNorm1d(),
            nn.Sigmoid(), nn.LazyLinear(num_classes))


# The largest rate at which each network still learnt (held-out loss well below its start) in a sweep of
# 0.03, 0.1, 0.3, 1, 3 with the same 100 batches of 64 images.
largest_stable_lr = {"with_bn": 1.0, "without_bn": 0.1}

# %% [markdown] 8.5/2
# Sweep (100 SGD steps of 64 stand-in images, Xavier init, same batches; held-out loss in evaluation mode):
# BNLeNet 1.78 at 0.1, 1.85 at 0.3, 1.72 at 1.0 and 3.06 at 3.0 (it blows up there); the sigmoid LeNet
# stays at 2.32 (chance) at every rate in so few steps, and over the book's 10 epochs it trains at 0.1
# but oscillates above it. Batch norm keeps every layer's inputs at zero mean and unit variance, so a
# large step does not drive the sigmoids into saturation, and the scale of the weights before each
# norm no longer matters (the step is effectively scale-invariant): larger rates stay stable.


# %% 8.5/3
class ConvBNLeNet(d2l.Classifier):
    """Batch norm after the two convolutions only; the dense layers have none."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(),
            nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(), nn.LazyLinear(num_classes))

# %% [markdown] 8.5/3
# Measured like 8.5/2 (100 SGD steps of 64 stand-in images at learning rate 1.0, held-out loss with batch
# statistics, three seeds): batch norm everywhere 1.27-1.45, after the convolutions only 2.21-2.26, none
# 2.32 (chance). At this rate the un-normalised sigmoid dense layers saturate, so removing batch norm
# there loses most of the gain: the normalisation matters wherever a layer's inputs would otherwise
# drift out of its useful range, not only early in the network. Batch norm after every hidden layer is
# the safe default, at some compute cost and a dependence on the batch; never after the output layer.


# %% 8.5/4
def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    # Use is_grad_enabled to determine whether we are in training mode
    if not torch.is_grad_enabled():
        # In prediction mode, use mean and variance obtained by moving average
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # When using a fully connected layer, calculate the mean and
            # variance on the feature dimension
            mean = X.mean(dim=0)
            var = ((X - mean) ** 2).mean(dim=0)
        else:
            # When using a two-dimensional convolutional layer, calculate the
            # mean and variance on the channel dimension (axis=1)
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        # In training mode, the current mean and variance are used
        X_hat = (X - mean) / torch.sqrt(var + eps)
        # Update the mean and variance using moving average
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta  # Scale and shift
    return Y, moving_mean.data, moving_var.data


class BatchNorm(nn.Module):
    # num_features: the number of outputs for a fully connected layer or the
    # number of output channels for a convolutional layer. num_dims: 2 for a
    # fully connected layer and 4 for a convolutional layer
    def __init__(self, num_features, num_dims):
        super().__init__()
        if num_dims == 2:
            shape = (1, num_features)
        else:
            shape = (1, num_features, 1, 1)
        # The scale parameter and the shift parameter (model parameters) are
        # initialized to 1 and 0, respectively
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # The variables that are not model parameters are initialized to 0 and
        # 1
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        # If X is not on the main memory, copy moving_mean and moving_var to
        # the device where X is located
        if self.moving_mean.device != X.device:
            self.moving_mean = self.moving_mean.to(X.device)
            self.moving_var = self.moving_var.to(X.device)
        # Save the updated moving_mean and moving_var
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean,
            self.moving_var, eps=1e-5, momentum=0.1)
        return Y


class _LiteNorm(nn.Module):
    """Batch norm that only centres or only scales; running statistics as in the book's BatchNorm."""
    centre = scale = False

    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.dims = (0,) if num_dims == 2 else (0, 2, 3)
        if self.centre:
            self.beta = nn.Parameter(torch.zeros(shape))
        if self.scale:
            self.gamma = nn.Parameter(torch.ones(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X, eps=1e-5, momentum=0.1):
        if True:
            mean = X.mean(dim=self.dims, keepdim=True)
            var = (X ** 2).mean(dim=self.dims, keepdim=True)
            with torch.no_grad():
                self.moving_mean.lerp_(mean, momentum)
                self.moving_var.lerp_(var, momentum)
        else:
            mean, var = self.moving_mean, self.moving_var
        if self.centre:
            return X - mean + self.beta
        return X / torch.sqrt(var + eps) * self.gamma


class CenterOnlyNorm(_LiteNorm):
    """Subtracts the batch mean (the running mean in evaluation), then adds a learnt shift β."""
    centre = True


class ScaleOnlyNorm(_LiteNorm):
    """Divides by the batch standard deviation (the running one in evaluation), then multiplies by a learnt γ."""
    scale = True


# %% 8.5/5
class BatchNormFixed(nn.Module):
    """The book's BatchNorm with γ = 1 and β = 0 fixed: buffers, not parameters, so nothing is trained."""
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        Y, moving_mean, moving_var = batch_norm(X, self.gamma, self.beta, self.moving_mean, self.moving_var,
                                                eps=1e-5, momentum=0.1)
        self.moving_mean.copy_(moving_mean)
        self.moving_var.copy_(moving_var)
        return Y

# %% [markdown] 8.5/5
# With γ and β fixed every layer's output is forced to zero mean and unit variance per channel: the
# network can no longer undo the normalisation where another scale or offset would suit the next
# layer (e.g. the saturating range of a sigmoid), so it is less expressive and usually trains a little
# worse. Followed by a layer with a bias and weights, much of the loss is recovered, since that layer
# can rescale and shift its inputs itself.


# %% [markdown] 8.5/6
# Both add noise during training and behave differently in evaluation. Dropout zeroes random units to
# stop co-adaptation, an explicit regulariser; batch norm's noise comes from estimating the mean and
# variance on a random minibatch, so its regularising effect depends on the batch size, and its main
# purpose is to stabilise and speed up optimisation. Batch norm does not replace dropout in dense
# layers of large models; with batch norm, less dropout is usually needed.


# %% [markdown] 8.5/7
# Ideas: normalise with a probability integral transform (map each feature through its estimated CDF
# to a uniform or Gaussian), which also removes skew but needs a density estimate per batch; whiten
# with the full covariance instead of the diagonal, which decorrelates features but costs O(d³) per
# batch and is unstable for small batches (ill-conditioned estimates) — block-diagonal or low-rank
# approximations (group whitening) trade between the two; normalise per sample instead of per batch
# (layer, group, instance norm) where batches are small.
