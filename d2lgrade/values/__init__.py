"""Expected values: the reference's outputs, computed once, recorded, cached."""
