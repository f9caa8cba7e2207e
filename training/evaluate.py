"""Entry point of ``python -m training.evaluate``; the evaluation lives in training.eval."""

import sys

from training.eval.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
