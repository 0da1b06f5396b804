"""The batched step decides greedy and sampled windows as whisper's own loop does: the same tokens, the
same result and the same recorded search, for every kind of options whisper's loop takes, in flight
together (each window's solo run is whisper's `DecodingTask`, as `run_alone` runs it)."""

from __future__ import annotations

import whisper
from together import in_flight_together
from whisper.decoding import DecodingOptions
from windows import FLOAT_TOLERANCE, assert_same_decode
from windows import mel_of as _mel

from whisper_inquiry.engine.batched import Decider
from whisper_inquiry.engine.lockstep import Decoded, DecodeJob, run_alone
from whisper_inquiry.engine.worker import Worker

CASES = {
    "greedy with timestamps": (DecodingOptions(language="en", fp16=False), "english_weather", None),
    "greedy without timestamps": (DecodingOptions(language="en", fp16=False, without_timestamps=True),
                                  "english_numbers", None),
    "sampled at 0.6": (DecodingOptions(language="en", fp16=False, temperature=0.6), "english_weather", 7),
    "sampled at 1.0, no timestamps": (DecodingOptions(language="en", fp16=False, temperature=1.0,
                                                      without_timestamps=True), "english_numbers", 3),
    "prompted by earlier text": (DecodingOptions(language="en", fp16=False, prompt=" The weather today."),
                                 "english_numbers", None),
    "a prefix, nothing suppressed, no initial limit": (
        DecodingOptions(language="en", fp16=False, prefix="Tomorrow", suppress_tokens="", suppress_blank=False,
                        max_initial_timestamp=None), "english_weather", None),
    "a late initial limit, top-5": (DecodingOptions(language="en", fp16=False, max_initial_timestamp=5.0),
                                    "english_story", None),
    "a short sample length": (DecodingOptions(language="en", fp16=False, sample_len=6), "english_story", None),
}


def _same_search(solo: Decoded, batched: Decoded) -> None:
    assert_same_decode(solo, batched)
    assert batched.result.compression_ratio == solo.result.compression_ratio
    assert batched.result.temperature == solo.result.temperature
    assert batched.decoder.prompt == solo.decoder.prompt and batched.sample_begin == solo.sample_begin
    assert list(batched.decoder.nodes) == list(solo.decoder.nodes)  # the same tree, built in the same order
    for key, node in solo.decoder.nodes.items():
        other = batched.decoder.nodes[key]
        assert (other.status, other.rank, other.top_ids) == (node.status, node.rank, node.top_ids), key
        assert abs(other.cum_logprob - node.cum_logprob) < FLOAT_TOLERANCE
        assert all(abs(a - b) < FLOAT_TOLERANCE for a, b in zip(other.top_logprobs, node.top_logprobs))
        assert node.entropy_bits != node.entropy_bits or abs(other.entropy_bits - node.entropy_bits) < 1e-3
    assert batched.ranker.finalists[0][0] == solo.ranker.finalists[0][0]


def test_every_kind_of_window_in_flight_together_is_decided_as_whispers_loop_decides_it(tiny):
    worker = Worker(tiny, max_batch=16)
    jobs = {name: DecodeJob(_mel(clip, tiny), options, top_k=5 if "top-5" in name else 10, seed=seed)
            for name, (options, clip, seed) in CASES.items()}
    in_flight_together(worker, [lambda job=job: worker.submit(job) for job in jobs.values()])
    assert worker.stats.deciders == {"batched step": len(CASES)}, worker.stats.deciders
    assert max(worker.stats.batch_sizes) >= 4, worker.stats.batch_sizes  # they shared steps
    for name, job in jobs.items():
        solo = run_alone(tiny, DecodeJob(job.mel, job.options, top_k=job.top_k, seed=job.seed))
        batched = job.future.result()
        try:
            _same_search(solo, batched)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from e
        if job.options.temperature == 0:  # and whisper's own decode, with nothing of ours around it
            assert batched.result.tokens == whisper.decode(tiny, job.mel, job.options).tokens, name
    assert len(jobs["a short sample length"].future.result().result.tokens) <= 6
    worker.close(60)


def test_beam_and_best_of_windows_keep_whispers_loop(tiny):
    """Windows of several rows are not the batched step's: beam search and best-of run whisper's loop."""
    mel = _mel("english_weather", tiny)
    features = tiny.embed_audio(mel[None])
    assert Decider.of(tiny, DecodingOptions(language="en", fp16=False, beam_size=3), 10, None, features) is None
    assert Decider.of(tiny, DecodingOptions(language="en", fp16=False, temperature=0.5, best_of=3), 10, 1,
                      features) is None
    assert Decider.of(tiny, DecodingOptions(language="en", fp16=False, temperature=0.5, best_of=1), 10, 1,
                      features) is not None
