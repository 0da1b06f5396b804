"""Many clips at once: a corpus read in any of the usual layouts (`read`), run through the engine with every
clip's result kept on disk (`run`), scored with whisper's normalisers and jiwer (`score`), and turned into
the table, slices, comparisons and files the Corpus page and `python -m whisper_inquiry corpus` show
(`table`)."""
