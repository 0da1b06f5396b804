#!/usr/bin/env bash
# Regenerate the bundled demo corpus: short synthetic speech clips (espeak-ng) with exact reference
# transcripts, some mixed with noise (sox), for comparing the bundled models (tiny.en, base) in class.
# Writes whisper_inquiry/samples/corpus/: 16 kHz mono 16-bit FLAC clips and manifest.jsonl, a NeMo-style
# manifest (audio_filepath relative to the manifest, text, duration) with the columns voice, speed, wpm,
# noise and language. Needs the Debian packages espeak-ng and sox.
#
# The speech is deterministic, the noise is not: sox's whitenoise/pinknoise is random on every run, so
# the noisy clips differ (slightly, at the same SNR) each time this runs. The committed files are the
# corpus; rerun only to change it, and then commit the new files and check the results again.
set -euo pipefail
out="$(dirname "$0")/../whisper_inquiry/samples/corpus"
mkdir -p "$out"
rm -f "$out"/*.flac "$out/manifest.jsonl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

json() {  # json TEXT: TEXT as a JSON string (escapes backslashes and double quotes)
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

rms() {  # rms FILE: the RMS amplitude of FILE, from sox's stat
  sox "$1" -n stat 2>&1 | awk '/^RMS +amplitude/ {print $3}'
}

n=0
clip() {  # clip VOICE WPM NOISE LANGUAGE TEXT [SPOKEN]; NOISE: clean | "white SNR" | "pink SNR" (SNR in dB)
  local voice=$1 wpm=$2 noise=$3 lang=$4 text=$5 spoken=${6:-$5} speed kind snr name label
  n=$((n + 1))
  if ((wpm < 140)); then speed=slow; elif ((wpm > 200)); then speed=fast; else speed=normal; fi
  if [[ $noise == clean ]]; then
    label=clean
    name=$(printf '%02d_%s_%s_clean' "$n" "${voice//+/-}" "$speed")
  else
    read -r kind snr <<<"$noise"
    label="$kind noise $snr dB"
    name=$(printf '%02d_%s_%s_%s%02d' "$n" "${voice//+/-}" "$speed" "$kind" "$snr")
  fi
  espeak-ng -v "$voice" -s "$wpm" -w "$tmp/say.wav" "$spoken"
  # Peaks at -9 dBFS: headroom for the noise and the resampler, and fewer bits to store (at -12 dBFS
  # tiny.en did worse on some clips). -D: no dither, so the padding stays digital silence and compresses
  # to nearly nothing.
  sox -D "$tmp/say.wav" -r 16000 -c 1 -b 16 "$tmp/speech.wav" gain -n -9 rate 16k pad 0.2 0.3
  if [[ $noise == clean ]]; then
    sox -D "$tmp/speech.wav" "$out/$name.flac"
  else
    # Noise over the whole clip, scaled so that (speech RMS) / (noise RMS) is the SNR; the speech RMS
    # is measured over the whole padded clip, pauses included. The speech keeps its level (-v 1).
    local dur gain
    dur=$(soxi -D "$tmp/speech.wav")
    sox -D -n -r 16000 -c 1 -b 32 "$tmp/noise.wav" synth "$dur" "${kind}noise"
    gain=$(awk -v s="$(rms "$tmp/speech.wav")" -v z="$(rms "$tmp/noise.wav")" -v snr="$snr" \
      'BEGIN { printf "%.6f", s / z / 10 ^ (snr / 20) }')
    sox -D -m -v 1 "$tmp/speech.wav" -v "$gain" "$tmp/noise.wav" -b 16 "$out/$name.flac"
  fi
  printf '{"audio_filepath": %s, "text": %s, "duration": %.2f, "voice": %s, "speed": %s, "wpm": %d, "noise": %s, "language": %s}\n' \
    "$(json "$name.flac")" "$(json "$text")" "$(soxi -D "$out/$name.flac")" "$(json "$voice")" \
    "$(json "$speed")" "$wpm" "$(json "$label")" "$(json "$lang")" >>"$out/manifest.jsonl"
}

# Everyday sentences, clean: these should mostly come out right on both models.
clip en-us 160 clean en "Can you pass me the salt, please?"
clip en-us+f3 160 clean en "We need milk, eggs and bread."
clip en-029 160 clean en "Please close the window."
clip en-gb 110 clean en "It is going to rain this afternoon."
clip en-us+f3 110 clean en "My sister lives near the sea."
clip en-us 230 clean en "I think we should leave a little earlier tomorrow."
clip en-gb 230 clean en "Turn left at the church."
# Numbers, dates and names, written as a person would write them. Whisper's EnglishTextNormalizer makes
# "9:30" "9 30" but leaves the models' "9.30" as it is (and makes "nine thirty" "930"): a WER that the
# scoring makes, not the model, worth opening in class.
clip en-us 160 clean en "The meeting is on March 14th at 9:30."
clip en-gb 160 clean en "The tickets cost 45 dollars each."
clip en-us+f3 160 clean en "Dr. Patel will see you at 3:15."
clip en-us 230 clean en "Flight 372 to Chicago is now boarding at gate 19."
clip en-gb 160 clean en "Siobhan and Nguyen met Krzysztof in Reykjavik."
# Tongue-twisters and rare words, hard on purpose.
clip en-us 230 clean en "She sells seashells by the seashore."
clip en-gb 160 clean en "The sixth sick sheikh's sixth sheep's sick."
clip en-us 160 clean en "The quokka ate a persimmon near the ziggurat."
# Noise: 20 dB SNR is mild, 10 dB is hard (at 5 dB almost nothing survived on these voices).
clip en-us 160 "white 20" en "Let's meet at the coffee shop."
clip en-gb 160 "white 20" en "The children are playing football in the park."
clip en-us+f3 160 "pink 20" en "Don't forget to water the plants."
clip en-029 110 "pink 20" en "The bus was late again this morning."
clip en-us 230 "white 20" en "Remember to bring your umbrella tomorrow."
clip en-us 160 "white 10" en "The library closes at 7 on Sundays."
clip en-gb 160 "pink 10" en "He painted the fence green."
clip en-us+f3 160 "white 10" en "Could you turn the music down?"
clip en-gb 230 "pink 10" en "Peter Piper picked a peck of pickled peppers."
# Other languages: the multilingual base transcribes them (espeak-ng's French is hard for it), the
# English-only tiny.en cannot. base's language detection gets the last one wrong (told "de", it is right).
clip es 160 clean es "Me gusta mucho la comida mexicana."
clip de 160 clean de "Wir fahren morgen mit dem Zug nach Berlin."
clip de 160 clean de "Guten Morgen, ich trinke eine Tasse Kaffee."
clip fr 160 clean fr "Bonjour, je m'appelle Marie et j'habite à Lyon."
clip fr 160 clean fr "Je voudrais un café, s'il vous plaît."
clip de 160 clean de "Entschuldigung, wo ist der Bahnhof?"
ls -l "$out"
du -sh "$out"
