"""Tests of evstream.ops: representations and filters against tonic, spikingjelly and numpy twins."""
