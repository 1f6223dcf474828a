"""`python -m d2lgrade.numerics --fingerprint` (d2lgrade/numerics/fingerprint.py)."""
import sys

from d2lgrade.numerics.fingerprint import main

sys.exit(main())
