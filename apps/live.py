"""`evstream live` as a script: `python apps/live.py --help`."""

import sys

from evstream.cli import main

if __name__ == "__main__":
    sys.exit(main(["live", *sys.argv[1:]]))
