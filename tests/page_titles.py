"""Each page's file stem and the question its title asks; shared by the AppTest and browser suites."""

PAGE_TITLES = {
    "overview": "What did Whisper hear?",
    "audio": "How does Whisper see sound?",
    "encoder": "What does the encoder do with the sound?",
    "tokens": "How sure was the decoder of each token?",
    "alignment": "Where in the audio did each word come from?",
    "search": "Which other sentences did the decoder consider?",
    "tokenizer": "How does Whisper turn text into tokens?",
    "architecture": "What is inside the model?",
    "lens": "Where in the decoder does each token form?",
    "compare": "What changes if ...?",
    "live": "Talk to Whisper",
    "export": "Take it with you",
    "glossary": "What do these words mean?",  # issue 25
    "corpus": "Where does Whisper fail, over many clips?",  # issue 33
    # issue 12: experiments
    "probe_occlusion": "Which sound made which word?",
    "probe_surgery": "What if the encoder never heard this span?",
    "probe_neurons": "What does one neuron listen for?",
    # issue 11: experiments
    "exp_hallucination": "Did Whisper hear it, or make it up?",
    "exp_heads": "What does each attention head do for this clip?",
    "exp_mask": "How far does the encoder need to look?",
    "exp_finder": "Which heads know where each word is?",
    "exp_encoder_lens": "At which encoder layer do the words appear?",
    "exp_language": "Which language is spoken in each window?",
}
