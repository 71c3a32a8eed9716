"""`python -m skiff.runtime` = `skiff-runtime`."""
import sys

from skiff.runtime.cli import main

sys.exit(main())
