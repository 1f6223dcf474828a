# Eli's work on 7.4 (demo class).
# %%
composed_size = "k2 + k1 - 1"
gaussian_separable = False
