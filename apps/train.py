"""`evstream train` as a script: `python apps/train.py --help`."""

import sys

from evstream.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
