"""Reference for 8.1 Deep convolutional neural networks (AlexNet): the book's code and a correct answer to
every exercise.

Percent-format cells (`# %% 8.1/N`) tie each part to its exercise, so this file is also graded as a
submission by `python grade.py --check-references`. Nothing trains at import time, and no count is typed
in: they are measured from the book's model on the `meta` device (no arithmetic), as the grader does.
"""
# %%
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode
from d2l import torch as d2l


# %% The book's code
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


def train_alexnet(max_epochs=10, batch_size=128, lr=0.01):
    """The book's training run at 224×224 (hours on a CPU, so it is never run while grading)."""
    model = AlexNet(lr=lr)
    data = d2l.FashionMNIST(batch_size=batch_size, resize=(224, 224))
    trainer = d2l.Trainer(max_epochs=max_epochs, num_gpus=1)
    trainer.fit(model, data)
    return model


# %% 8.1/1.1
def book_alexnet_on_meta():
    """The book's AlexNet on the meta device, its lazy layers materialised by one 1×224×224 forward pass."""
    with torch.device("meta"):
        model = AlexNet()
        model(torch.zeros(1, 1, 224, 224))
    return model


def split_parameters(model):
    split = {"conv": 0, "fc": 0}
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            split["conv" if isinstance(module, nn.Conv2d) else "fc"] += sum(p.numel() for p in module.parameters())
    return split


alexnet_param_split = split_parameters(book_alexnet_on_meta())


# %% 8.1/1.2
def split_flops(model, X_shape=(1, 1, 224, 224)):
    """FLOPs of one forward pass (FlopCounterMode: a multiply-add is 2 FLOPs), convolutions against the rest."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(X_shape, device="meta"))
    split = {"conv": 0, "fc": 0}
    for op, count in counter.get_flop_counts()["Global"].items():
        split["conv" if "convolution" in str(op) else "fc"] += count
    return split


alexnet_flop_split = dict(split_flops(book_alexnet_on_meta()), unit="FLOPs")

# %% [markdown] 8.1/1.3
# Memory and compute pull apart: the dense layers hold about 92 % of the parameters but do under 5 % of the
# multiply-adds, and the convolutions the reverse. A dense layer reads each of its weights once per image,
# about one multiply-add per value fetched, so at batch size 1 it is limited by memory bandwidth; the
# convolutions reuse each weight at every position and are limited by arithmetic. Batching reuses the
# dense weights too and moves them back towards compute-bound.

# %% [markdown] 8.1/2
# Training keeps every activation of the forward pass for the backward pass, computes gradients for the
# activations and for the weights (about twice the forward arithmetic again), and holds gradients and
# optimizer state (momentum) beside the weights. Memory per image grows with the activations, so the
# batch that fits shrinks, and compute is roughly three times inference.

# %% [markdown] 8.1/3
# A chip trades area and power between arithmetic units, on-chip memory and bandwidth to off-chip memory.
# AlexNet's convolutions want many multiply-add units; its dense layers want bandwidth or large caches.
# Specialised chips (GPUs' tensor cores, TPUs) add arithmetic and on-chip memory and rely on batching to
# keep it busy. AlexNet is no longer a useful benchmark: it is small and fast on modern hardware, it is
# dominated by layer types that modern networks avoid (huge dense layers, 11×11 kernels), and accuracy on
# its task is saturated, so it tests neither today's bottlenecks nor today's models.

# %% [markdown] 8.1/4
# With more epochs AlexNet keeps improving after LeNet has levelled off: it has far more capacity and,
# with dropout and ReLU, keeps generalising, so its held-out accuracy ends several points higher. LeNet
# (sigmoid) underfits and improves slowly; AlexNet costs over two thousand times LeNet's compute per image
# (1.88 GFLOPs at 224×224 against 0.8 MFLOPs at 28×28), so each of its epochs takes far longer.


# %% 8.1/5.1
class SmallAlexNet(d2l.Classifier):
    """AlexNet simplified for 28×28 Fashion-MNIST: three convolutions instead of five, narrower channels,
    one dense hidden layer of 256 instead of two of 4096, dropout kept; no resizing."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(32, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(256), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(num_classes))


# %% 8.1/5.2
class AlexNet28(d2l.Classifier):
    """AlexNet's layout (five convolutions, three pooling layers, two dense hidden layers with dropout)
    sized for 28×28 input: 3×3 windows, stride 1, channels scaled down, so nothing is resized."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(96, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(96, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(256), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(256), nn.ReLU(), nn.Dropout(p=0.5),
            nn.LazyLinear(num_classes))

# %% [markdown] 8.1/5.2
# Both models take 28×28 images as they are. SmallAlexNet costs about 12 MFLOPs per image and AlexNet28 about
# 27 MFLOPs, against 1.88 GFLOPs for the book's AlexNet at 224×224: roughly a hundredth, so an epoch takes
# minutes instead of hours on a CPU. After 150 SGD steps of 64 images (learning rate 0.1, Xavier
# initialisation) on the offline digits, SmallAlexNet reached 63 % held-out accuracy while the deeper
# AlexNet28 was still at chance (12 %): plain deep networks without batch normalisation start slowly, so
# AlexNet28 needs the book's full 10 epochs (or a smaller learning rate with momentum) to catch up.


# %% [markdown] 8.1/6
# Larger batches raise throughput (images per second) until the device is busy, then it flattens; memory
# grows linearly with the batch because every activation is kept for the backward pass, so the batch that
# fits is limited by memory. With the learning rate unchanged, larger batches take fewer steps per epoch
# and reach a lower accuracy after the same epochs; scaling the learning rate with the batch recovers most
# of it. Dropout and the dense layers' weights do not depend on the batch size; the activations do.


# %% 8.1/7
class LeNetDropout(d2l.Classifier):
    """LeNet with ReLU instead of sigmoid, max pooling, and dropout after each dense hidden layer."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.ReLU(), nn.Dropout(p=0.2),
            nn.LazyLinear(84), nn.ReLU(), nn.Dropout(p=0.2),
            nn.LazyLinear(num_classes))

# %% [markdown] 8.1/8
# To make AlexNet overfit: drop the dropout layers and any augmentation, train on a small subset (a few
# hundred images) for many epochs; training accuracy goes to 100 % while held-out accuracy stalls or
# falls. To break training: sigmoid activations everywhere (gradients vanish through eight layers),
# all-zero or very large initial weights, or a learning rate of about 1 or more, which makes the loss
# diverge to NaN or leaves every ReLU dead.
