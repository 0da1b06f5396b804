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
    # issue 12: experiments
    "probe_occlusion": "Which sound made which word?",
    "probe_surgery": "What if the encoder never heard this span?",
    "probe_neurons": "What does one neuron listen for?",
}
