# Chen's work on 7.2 (demo class): the code crashes when the grader calls it.
# %%
import torch

# %% 7.2/1
def corr2d(X, K):
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0] + 1):              # one row too many
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def diagonal_image(n):
    return torch.eye(n)


kernel_t_detects = "horizontal"

# %% 7.2/2.2
second_derivative_kernel = lambda: torch.tensor([[1.0, -2.0, 1.0]]).reshape(3, 1, 1, 1).squeeze(4)
min_size_second_derivative = 3
