#!/bin/sh
# Regenerate the demo recordings in this folder with the evstream CLI (same seeds, same events).
# Usage: sh recordings/make_recordings.sh   (EVSTREAM=... overrides the command, e.g. "python -m evstream.cli")
set -e
cd "$(dirname "$0")"
EVSTREAM=${EVSTREAM:-evstream}
rm -rf gen1_road mvsec_depth dvs_gesture
$EVSTREAM simulate road --out gen1_road --seconds 2 --sequences 1 1 1 --seed 1
$EVSTREAM simulate depth --out mvsec_depth --name sim_corridor1 --seconds 1 --seed 1
$EVSTREAM simulate gesture --out dvs_gesture --users 2 --test-users 1 --seconds 1.5 --seed 1
