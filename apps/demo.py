"""`evstream demo` as a script: `python apps/demo.py --help`."""

import sys

from evstream.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
