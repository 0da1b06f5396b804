#!/usr/bin/env bash
# Regenerate the bundled samples: synthetic speech (espeak-ng) and teaching signals (sox).
# All are 16 kHz mono FLAC, small enough to commit. Needs the Debian packages espeak-ng and sox.
set -euo pipefail
out="$(dirname "$0")/../whisper_inquiry/samples"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

speak() {  # speak VOICE NAME TEXT
  espeak-ng -v "$1" -s "${SPEED:-130}" -g 3 -w "$tmp/$2.wav" "$3"
  sox "$tmp/$2.wav" -r 16000 -c 1 -b 16 "$out/$2.flac" pad 0.3 0.5
}

speak en-us english_weather "The weather today is sunny with a light breeze. Tomorrow we expect rain in the afternoon."
speak en-us english_numbers "Please call me at five five five, one two three four. The meeting starts at nine thirty."
SPEED=135 speak en-us english_story "Every morning the baker opens her shop at six. She bakes fresh bread, sweet rolls and a few cakes for the day. People from the village line up outside, talking about the weather and the news. By noon most of the bread is gone, and she starts to plan for tomorrow."
speak es spanish "Buenos días. Hoy hace buen tiempo y vamos al parque con los niños."
sox -D -n -r 16000 -c 1 -b 16 "$out/silence.flac" trim 0 5  # -D: no dither, true digital silence
sox -n -r 16000 -c 1 -b 16 "$out/white_noise.flac" synth 5 whitenoise vol 0.3
sox -n -r 16000 -c 1 -b 16 "$out/chirp.flac" synth 5 sine 100-4000 vol 0.5
ls -l "$out"
"$(dirname "$0")/make_corpus.sh"
