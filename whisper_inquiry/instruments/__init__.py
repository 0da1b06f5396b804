"""The instruments of one run: named capture points on the model (`points`, `capture`), the recording
beam search (`search`), tokens and their runners-up (`tokens`), attention summaries (`attention`),
word alignment and the logit lens (`alignment`), and a Live listener's quick look (`live`).
"""
