"""`evstream replay` as a script: `python apps/replay.py --help`."""

import sys

from evstream.cli import main

if __name__ == "__main__":
    sys.exit(main(["replay", *sys.argv[1:]]))
