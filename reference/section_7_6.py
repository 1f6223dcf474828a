"""Reference for 7.6 Convolutional neural networks (LeNet): the book's code and a correct answer to every exercise.

Percent-format cells (`# %% 7.6/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. Nothing here trains at import time: the grader
trains the networks itself (graders/section_7_6.py).
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from d2l import torch as d2l


# %% The book's code
def init_cnn(module):
    """Xavier-uniform initialisation of convolution and linear weights (the book's `init_cnn`)."""
    if type(module) == nn.Linear or type(module) == nn.Conv2d:
        nn.init.xavier_uniform_(module.weight)


class LeNet(d2l.Classifier):
    """The LeNet-5 model of the book: sigmoid activations and average pooling."""
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


@d2l.add_to_class(d2l.Classifier)
def layer_summary(self, X_shape):
    X = torch.randn(*X_shape)
    for layer in self.net:
        X = layer(X)
        print(layer.__class__.__name__, 'output shape:\t', X.shape)


def train_lenet(max_epochs=10, batch_size=128, lr=0.1):
    """The book's training run (minutes on a CPU, so it is not run while grading)."""
    trainer = d2l.Trainer(max_epochs=max_epochs, num_gpus=1)
    data = d2l.FashionMNIST(batch_size=batch_size)
    model = LeNet(lr=lr)
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], init_cnn)
    trainer.fit(model, data)
    return model


# %% 7.6/1
class ModernLeNet(d2l.Classifier):
    """LeNet with max pooling and ReLU. The book's LeNet has no softmax layer (the loss applies it), so
    "replacing the softmax with ReLU" means replacing the sigmoids; the last layer still outputs logits."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.ReLU(),
            nn.LazyLinear(84), nn.ReLU(),
            nn.LazyLinear(num_classes))


# %% 7.6/2
class ImprovedLeNet(d2l.Classifier):
    """Wider 3×3 convolutions (16 and 32 channels) with batch normalisation, one wider dense layer
    instead of two, and Adam: trains much faster than LeNet in the same number of steps."""
    def __init__(self, lr=2e-3, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(16, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(32, kernel_size=3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(128), nn.ReLU(),
            nn.LazyLinear(num_classes))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)

# %% [markdown] 7.6/2
# Knobs changed, starting from the modern LeNet (max pooling, ReLU): (1) window size 5×5 → 3×3 with
# padding 1; (2) output channels 6/16 → 16/32, each convolution followed by batch normalisation; (4) the
# dense layers 120-84 → one hidden layer of 128; (5) training: Adam with learning rate 2e-3 instead of SGD
# with 0.1. The number of convolution layers (3) stays at two. With the grader's budget (300 steps of 64
# images) the held-out accuracy rises by several points over the modern LeNet trained the book's way.


# %% 7.6/3
def mnist_model():
    """A fresh, untrained network for MNIST: the improved LeNet."""
    return ImprovedLeNet()


# %% 7.6/4
def first_two_activations(model, X):
    """Outputs of the activation functions after the first and the second convolution of `model.net`."""
    layers = list(model.net)
    activations = []
    for i, layer in enumerate(layers):
        X = layer(X)
        if i > 0 and isinstance(layers[i - 1], nn.Conv2d) and not isinstance(layer, nn.Conv2d):
            activations.append(X)
            if len(activations) == 2:
                return activations[0], activations[1]
    raise ValueError("model.net has fewer than two convolutions followed by an activation")


# %% [markdown] 7.6/5
# The first layer still responds to local edges and blobs, so noise or a photo of a cat gives dense,
# unstructured maps with no clear shape; the second layer's maps no longer show the part-like patterns
# that separate sweaters from coats, and their statistics (mean, spread) shift away from what the
# network saw in training. Yet the last layer still produces a softmax over the ten classes, often with
# high confidence: the classifier has no "none of these" answer, so its confidence says nothing about
# whether the input is like the training data (it must also be a 28×28 grey image to be accepted at all).
