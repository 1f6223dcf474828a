# %% 7.3/4
stride_speedup = 's_h*s_w'  # café à la crème
