# Hostile submission for tests/test_hostile.py: looking for the grader's held-out images (case 17).
# Every image of the grader's test files carries a marker pixel (top-left corner = 255) that no training
# image has. This looks in every place the runtime can reach: the datasets torchvision serves (train=True
# and train=False, so d2l.FashionMNIST's splits), the agent's own loader asked for the "test" split, the
# raw files of --data-dir and of the folder the runtime was given, and the course's held-out key.
# If it finds anything, ImprovedLeNet is a network that trains; if not, it gives 3 scores per image, so
# the grader stops at once and its message shows the shape: (N, 3) means nothing was found.
# %% 7.6/2
import os
import sys

import torch
import torchvision
from torch import nn

DATA_DIR = "@@DATA_DIR@@"            # the grader's --data-dir (the test fills it in)
KEY_FILE = "@@KEY_FILE@@"            # the course's held-out key
FOUND = []


def _marked(images):
    images = torch.as_tensor(images)
    return images.dim() == 3 and bool((images[:, 0, 0] == 255).any())


for _cls in (torchvision.datasets.FashionMNIST, torchvision.datasets.MNIST):
    for _train in (True, False):
        try:
            if _marked(_cls("data", train=_train, download=True).data):
                FOUND.append("torchvision %s train=%s" % (_cls.__name__, _train))
        except Exception:
            pass
_agent = sys.modules.get("_d2lgrade_agent")
for _where in (DATA_DIR, _agent._DATA["data_dir"] if _agent else None):
    try:
        if _marked(_agent.dataset_images("fashion_mnist", "test", _where)[0]):
            FOUND.append("the agent's test split of %s" % _where)
    except Exception:
        pass
    for _root, _, _files in os.walk(_where or "/nonexistent"):
        for _name in _files:
            if _name.startswith("t10k"):
                try:
                    with open(os.path.join(_root, _name), "rb") as _f:
                        _f.read(16)
                    FOUND.append(os.path.join(_root, _name))
                except OSError:
                    pass
try:
    with open(KEY_FILE, "rb") as _f:
        FOUND.append("the key " + _f.read().decode())
except OSError:
    pass


class ImprovedLeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10 if FOUND else 3))

    def forward(self, X):
        return self.net(X)
